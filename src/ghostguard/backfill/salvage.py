"""When a batch fails on a row's data, the window is salvaged instead of stopping the run.

A batch is one set-based INSERT; one row that breaks a constraint aborts it. The salvage, in one
transaction on the batch's connection:

1. counts the window's ghosts;
2. runs one DO block that finds, set-based, the rows that would break a NOT NULL or CHECK
   constraint of the profile table (the constraint expressions are read from the catalog and
   evaluated by the server over the mapped values, so nothing is spliced in by hand), records
   them, inserts the other rows set-based, and only if that fails too (a UNIQUE collision, a
   foreign key, a cast, a trigger that raises) goes through them in chunks of `FALLBACK_CHUNK`,
   row by row only inside a chunk that fails, exactly like the sync trigger's import path;
3. advances the audit row: profiles created, users that could not get one, the checkpoint.

Each user who cannot get a profile is recorded once in the failures table (operation `backfill`,
SQLSTATE, constraint, message) and not again while that failure is unresolved.
"""

from __future__ import annotations

from psycopg import errors, sql

from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.sqlparts import Step, audit, do_block, failures, ident, name_literal, source, target
from ghostguard.sync.function import insert_rows, insert_rows_declarations
from ghostguard.sync.mapping import profile_values

OPERATION = "backfill"
# Data, not the database: a row's value breaks a constraint or a cast, or a trigger on the profile
# table raises for it. Lock and statement timeouts and lost connections stay batch failures.
DATA_ERRORS: tuple[type[Exception], ...] = (
    errors.DataError,
    errors.IntegrityError,
    errors.RaiseException,
)
FALLBACK_CHUNK = 64  # after the set-based insert failed: small chunks, few of them failing

# The statement the block runs (pg_catalog.format, %s and %L filled in by the server): evaluate the
# rules over the candidates, record each breaker once, return their keys.
_RECORD_RULE_BREAKERS = (
    "WITH broken AS (SELECT t.ghostguard_key AS k, CASE %s END AS rule FROM (%s) t), "
    "recorded AS (INSERT INTO %s (user_id, operation, sqlstate, constraint_name, message) "
    "SELECT b.k, %L, CASE WHEN b.rule LIKE %L THEN %L ELSE %L END, b.rule, %L || b.rule || %L "
    "FROM broken b WHERE b.rule IS NOT NULL AND NOT EXISTS (SELECT 1 FROM %s f "
    "WHERE f.user_id = b.k AND f.operation = %L AND f.resolved_at IS NULL)) "
    "SELECT coalesce(array_agg(k), %L) FROM broken WHERE rule IS NOT NULL"
)


def window_ghosts(
    config: Config,
    lower: sql.Composable | None,
    upper: sql.Composable,
    select: sql.Composable | None = None,
    inclusive: bool = False,
) -> sql.Composed:
    """The window's auth rows with no profile, alias `a` (their keys, or `select`): the batch's
    anti-join, confined to the key range on both sides so it reads the window, not the tables.
    `lower` None: from the first key; else keys `>` it (`>=` when `inclusive`)."""
    skey, tkey = ident(config.source.key), ident(config.target.key)
    op = sql.SQL(">=" if inclusive else ">")
    a_lower = sql.SQL("") if lower is None else sql.SQL("a.{} {} {} AND ").format(skey, op, lower)
    pu_lower = sql.SQL("") if lower is None else sql.SQL("pu.{} {} {} AND ").format(tkey, op, lower)
    return sql.SQL(
        "SELECT {select} FROM {source} a\n"
        "WHERE {a_lower}a.{skey} <= {upper}\n"
        "  AND NOT EXISTS (SELECT 1 FROM {target} pu\n"
        "                  WHERE pu.{tkey} = a.{skey} AND {pu_lower}pu.{tkey} <= {upper})"
    ).format(
        select=select or sql.SQL("a.{}").format(skey),
        source=source(config),
        a_lower=a_lower,
        skey=skey,
        upper=upper,
        target=target(config),
        tkey=tkey,
        pu_lower=pu_lower,
    )


def _after(first: bool) -> sql.Composable | None:
    return None if first else sql.SQL("%(after)s")


def bounds() -> Step:
    """Params: after ('' for the first window), last. Read by the salvage block."""
    return Step(
        "backfill salvage: the window's bounds, for the block below",
        sql.SQL(
            "SELECT set_config('ghostguard.after', %(after)s, true), "
            "set_config('ghostguard.last', %(last)s, true)"
        ),
    )


def ghosts_in_window(config: Config, first: bool) -> Step:
    """Params: after (omitted when first), last."""
    return Step(
        "backfill salvage: the window's ghosts before",
        sql.SQL("SELECT count(*) FROM ({}) g").format(
            window_ghosts(config, _after(first), sql.SQL("%(last)s"))
        ),
    )


def _rules(config: Config, shape: Shape) -> sql.Composed:
    """Builds v_rules: one `WHEN <broken> THEN '<constraint>'` per NOT NULL mapped column and per
    CHECK constraint over mapped columns only (others see only defaults)."""
    names = sql.Literal([name for name, _ in profile_values(config, shape, sql.SQL("a"))])
    return sql.SQL(
        "SELECT string_agg(w, ' ' ORDER BY n, name) INTO v_rules FROM (\n"
        "  SELECT 1 AS n, a.attname::text AS name,\n"
        "         pg_catalog.format('WHEN %I IS NULL THEN %L', a.attname, a.attname || ' NOT NULL') AS w\n"
        "  FROM pg_catalog.pg_attribute a\n"
        "  WHERE a.attrelid = {table}::regclass AND a.attnotnull AND a.attname = ANY ({names})\n"
        "  UNION ALL\n"
        "  SELECT 2, c.conname::text, pg_catalog.format('WHEN NOT coalesce((%s), true) THEN %L',\n"
        "         pg_catalog.pg_get_expr(c.conbin, c.conrelid), c.conname)\n"
        "  FROM pg_catalog.pg_constraint c\n"
        "  WHERE c.conrelid = {table}::regclass AND c.contype = 'c'\n"
        "    AND NOT EXISTS (SELECT 1 FROM unnest(c.conkey) k(num)\n"
        "                    JOIN pg_catalog.pg_attribute x ON x.attrelid = c.conrelid AND x.attnum = k.num\n"
        "                    WHERE x.attname <> ALL ({names}))\n"
        ") rules;"
    ).format(table=name_literal(target(config)), names=names)


def _candidates(config: Config, shape: Shape) -> sql.Composed:
    """The window's ghosts with their mapped values under the profile's column names ($1 the
    window's first key, $2 its last), for the rules to read."""
    key = ident(config.source.key)
    mapped = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(expr, ident(name))
        for name, expr in profile_values(config, shape, ident("a"))
    )
    return window_ghosts(
        config,
        sql.SQL("$1"),
        sql.SQL("$2"),
        sql.SQL("a.{}::text AS ghostguard_key, {}").format(key, mapped),
        inclusive=True,
    )


def salvage(config: Config, shape: Shape) -> Step:
    """One DO block over the window named by `bounds`: record the rows that break a rule, insert
    the rest set-based, else in chunks and row by row. Static text: the bounds come as settings."""
    skey = ident(config.source.key)
    key_type = sql.SQL("{}.{}%TYPE").format(source(config), skey)
    # an anti-join, not `<> ALL (v_bad)`: that compares every row with every bad key
    remaining = sql.SQL(
        "{} AND NOT EXISTS (SELECT 1 FROM unnest(v_bad) b(k) WHERE b.k = a.{}::text)\n"
        "    ORDER BY a.{}"
    ).format(
        window_ghosts(config, sql.SQL("v_lo"), sql.SQL("v_last"), sql.SQL("a.*"), inclusive=True),
        skey,
        skey,
    )
    record_rule = sql.SQL(
        "pg_catalog.format({fmt}, v_rules, {candidates}, {failures}, {op}, '% NOT NULL', '23502',\n"
        "        '23514', 'the mapped value breaks ', ' (found before inserting)', {failures}, {op}, '{{}}')"
    ).format(
        fmt=sql.Literal(_RECORD_RULE_BREAKERS),
        candidates=sql.Literal(_candidates(config, shape).as_string(None)),  # for EXECUTE
        failures=name_literal(failures(config)),
        op=sql.Literal(OPERATION),
    )
    return Step(
        "backfill salvage: record the rows that break a "
        "NOT NULL or CHECK constraint, insert the others set-based, else in chunks and row by row",
        do_block(
            sql.SQL(
                "\n"
                "DECLARE\n"
                "  v_after {key_type} := nullif(current_setting('ghostguard.after'), '');\n"
                "  v_last {key_type} := current_setting('ghostguard.last');\n"
                "  v_lo {key_type};\n"
                "  v_rules text;\n"
                "  v_bad text[] := '{{}}';\n"
                "{declarations}"
                "BEGIN\n"
                "  -- the window's first key, so every read below is an index range on both tables\n"
                "  IF v_after IS NULL THEN\n"
                "    SELECT a.{skey} INTO v_lo FROM {source} a ORDER BY a.{skey} LIMIT 1;\n"
                "  ELSE\n"
                "    SELECT a.{skey} INTO v_lo FROM {source} a WHERE a.{skey} > v_after\n"
                "      ORDER BY a.{skey} LIMIT 1;\n"
                "  END IF;\n"
                "  {rules}\n"
                "  IF v_rules IS NOT NULL THEN\n"
                "    BEGIN\n"
                "      EXECUTE {record_rule} INTO v_bad USING v_lo, v_last;\n"
                "    EXCEPTION WHEN OTHERS THEN\n"
                "      v_bad := '{{}}';  -- a rule this cannot evaluate: the row-by-row path finds its rows\n"
                "    END;\n"
                "  END IF;\n"
                "  {insert_rows}\n"
                "END\n"
                ""
            ).format(
                key_type=key_type,
                skey=skey,
                source=source(config),
                rules=_rules(config, shape),
                record_rule=record_rule,
                declarations=insert_rows_declarations(config),
                insert_rows=insert_rows(
                    config,
                    shape,
                    sql.SQL("({}) n").format(remaining),
                    sql.SQL(""),
                    remaining,
                    OPERATION,
                    once=True,
                    chunk_size=FALLBACK_CHUNK,
                ),
            )
        ),
    )


def record(config: Config, first: bool) -> Step:
    """Params: after (omitted when first), last, before, count, run, checkpoint. Returns
    (profiles created, users left without one)."""
    return Step(
        "backfill salvage: count what the window got, and advance the checkpoint",
        sql.SQL(
            "WITH left_over AS (SELECT count(*) AS n FROM ({ghosts}) g)\n"
            "UPDATE {audit}\n"
            "SET records_affected = coalesce(records_affected, 0) + %(before)s::bigint - (SELECT n FROM left_over),\n"
            "    records_failed = coalesce(records_failed, 0) + (SELECT n FROM left_over),\n"
            "    details = details || jsonb_build_object(\n"
            "      'checkpoint', %(checkpoint)s::text,\n"
            "      'scanned', coalesce((details ->> 'scanned')::bigint, 0) + %(count)s,\n"
            "      'batches', coalesce((details ->> 'batches')::bigint, 0) + 1)\n"
            "WHERE id = %(run)s\n"
            "RETURNING %(before)s::bigint - (SELECT n FROM left_over), (SELECT n FROM left_over)"
        ).format(
            ghosts=window_ghosts(config, _after(first), sql.SQL("%(last)s")),
            audit=audit(config),
        ),
    )
