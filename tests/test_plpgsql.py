"""Reading trigger bodies with PostgreSQL's parser: blocks, strings and comments are never misread."""

from __future__ import annotations

import pytest

from ghostguard import plpgsql

HANDLER_WITH_IF = """
BEGIN
  INSERT INTO public.signup_events (user_id, note) VALUES (NEW.id, 'copied FROM users');
  RETURN NEW;
EXCEPTION WHEN OTHERS THEN
  IF TG_OP = 'INSERT' THEN NULL; END IF;
  RAISE WARNING 'signup log failed: %', SQLERRM;
  RETURN NEW;
END
"""


def test_a_handler_that_reports_after_an_if_block_is_not_swallowing() -> None:
    body = plpgsql.read(HANDLER_WITH_IF, "plpgsql")
    assert body.swallowed() == 0
    assert body.relations() == [plpgsql.Relation("public", "signup_events", writes=True)]


def test_strings_comments_ctes_functions_and_transition_tables_are_not_tables() -> None:
    body = plpgsql.read(
        """
        DECLARE n int;
        BEGIN
          -- SELECT * FROM comments_are_not_tables
          /* nor FROM these */
          WITH recent AS (SELECT id FROM new_rows)
          INSERT INTO profiles (id, handle)
          SELECT r.id, 'FROM users' FROM recent r, pg_catalog.generate_series(1, 1) g;
          n := (SELECT count(*) FROM settings);
          PERFORM public.notify(NEW.id);
          RETURN NULL;
        END
        """,
        "plpgsql",
    )
    assert body.unqualified(local=("new_rows",)) == ["profiles", "settings"]
    assert [r for r in body.relations(("new_rows",)) if r.writes] == [
        plpgsql.Relation(None, "profiles", writes=True)
    ]
    assert body.inserts() == [plpgsql.Insert(None, "profiles", ("id", "handle"))]
    assert not body.writes_to("public", "profiles")  # unqualified: resolved by search_path
    assert body.writes_to("public", "profiles", search_path="public, extensions")
    assert not body.writes_to("public", "settings", search_path="public")


@pytest.mark.parametrize(
    ("handler", "swallowed"),
    [
        ("RETURN NEW;", 1),
        ("BEGIN NULL; END; RETURN NEW;", 1),  # a nested block that does nothing
        ("RAISE NOTICE 'ignored'; RETURN NEW;", 1),  # a notice reaches no one
        ("BEGIN INSERT INTO public.failures (id) VALUES (NEW.id); END; RETURN NEW;", 0),
        ("PERFORM public.record_failure(NEW.id); RETURN NEW;", 0),
        ("RAISE;", 0),
        ("RAISE EXCEPTION 'profile: %', SQLERRM;", 0),
    ],
)
def test_swallowed_handlers_are_counted_by_what_they_do(handler: str, swallowed: int) -> None:
    source = (
        "BEGIN INSERT INTO public.users (id) VALUES (NEW.id); RETURN NEW; "
        f"EXCEPTION WHEN OTHERS THEN {handler} END"
    )
    assert plpgsql.read(source, "plpgsql").swallowed() == swallowed


def test_sql_bodies_and_unreadable_ones() -> None:
    body = plpgsql.read("INSERT INTO public.users (id) SELECT id FROM auth.users", "sql")
    assert body.relations() == [
        plpgsql.Relation("public", "users", writes=True),
        plpgsql.Relation("auth", "users", writes=False),
    ]
    with pytest.raises(plpgsql.BodyError, match="syntax error"):
        plpgsql.read("BEGIN INSERT INTO; END", "plpgsql")
    with pytest.raises(plpgsql.BodyError, match="cannot read a c function"):
        plpgsql.read("handle_new_user", "c")
