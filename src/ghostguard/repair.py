"""Retry the profile writes the trigger recorded as failed, once their cause is fixed.

The trigger never fails a signup; it records the failure instead (syncsql.py). `repair` syncs
each affected user from the auth row as it is now (create or update the profile, or mark it
deleted when the auth row is gone or soft-deleted) and marks that user's failures resolved. A
user whose retry fails again keeps the failures, with the new error and one more attempt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg import errors, sql

from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.errors import DatabaseError
from ghostguard.locks import exclusive_run, in_the_way
from ghostguard.runner import database_errors, primary_message
from ghostguard.sqlparts import Step, failures, ident, source
from ghostguard.sync.failures import failures_table_exists, key_from_text
from ghostguard.sync.mapping import mark_deleted, upsert_profile


@dataclass(frozen=True)
class StillFailing:
    user_id: str
    sqlstate: str | None
    message: str


@dataclass(frozen=True)
class RepairResult:
    users_repaired: int
    failures_resolved: int
    still_failing: list[StillFailing] = field(default_factory=list[StillFailing])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def repair(conn: psycopg.Connection, config: Config, shape: Shape) -> RepairResult:
    """Retry every user with unresolved failures, each in its own transaction (autocommit conn)."""
    if not failures_table_exists(conn, config):
        return RepairResult(0, 0)
    with exclusive_run(conn, config, "repair"):
        with database_errors("repair: reading the failures"):
            users = conn.execute(unresolved_users(config).statement).fetchall()
        repaired = resolved = 0
        still: list[StillFailing] = []
        for user_id, count, _ in users:
            try:
                with conn.transaction():
                    resolution = _sync_user(conn, config, shape, user_id)
                    conn.execute(
                        resolve_failures(config).statement,
                        {"user": user_id, "resolution": resolution},
                    )
            except errors.LockNotAvailable as exc:  # held by a migration: so is every next user
                who = in_the_way(conn, [config.target, config.source])
                raise DatabaseError(
                    f"repair: gave up waiting for a lock after {repaired} of {len(users)} users "
                    f"repaired{who}; the rest are still recorded: run again when that "
                    "transaction ends",
                    exc.sqlstate,
                ) from None
            except psycopg.Error as exc:
                still.append(StillFailing(user_id, exc.sqlstate, primary_message(exc)))
                with database_errors("repair: recording a failed retry"), conn.transaction():
                    conn.execute(
                        failed_again(config).statement,
                        {
                            "user": user_id,
                            "sqlstate": exc.sqlstate,
                            "message": primary_message(exc),
                        },
                    )
                continue
            repaired += 1
            resolved += int(count)
    return RepairResult(repaired, resolved, still)


def _sync_user(conn: psycopg.Connection, config: Config, shape: Shape, user_id: str) -> str:
    """Bring one user's profile in line with the auth row; returns what was done."""
    params = {"user": user_id}
    row = conn.execute(auth_row_state(config, shape).statement, params).fetchone()
    if row is not None and not row[0]:
        conn.execute(repair_upsert(config, shape).statement, params)
        return "repaired: profile synced from the auth row"
    if not shape.target_soft_delete:
        return "resolved: the auth row is deleted and the profile has no soft-delete column"
    conn.execute(repair_mark_deleted(config, shape).statement, params)
    return "repaired: the auth user is deleted, profile marked deleted"


def unresolved_users(config: Config) -> Step:
    return Step(
        "repair: users with unresolved profile sync failures, oldest first",
        sql.SQL(
            "SELECT user_id, count(*), min(occurred_at) FROM {} WHERE resolved_at IS NULL "
            "GROUP BY user_id ORDER BY min(occurred_at)"
        ).format(failures(config)),
    )


def _key_param(shape: Shape) -> sql.Composable:
    """Param `user` as the auth key (or as it is, for a key type without a cast)."""
    return key_from_text(shape, sql.SQL("%(user)s")) or sql.SQL("%(user)s")


def auth_row_state(config: Config, shape: Shape) -> Step:
    """Params: user. One row (soft-deleted?) when the auth row exists, none when it is gone."""
    deleted = sql.SQL("au.deleted_at IS NOT NULL") if shape.source_soft_delete else sql.SQL("false")
    return Step(
        "repair: does the auth row still exist, and is it soft-deleted?",
        sql.SQL("SELECT {} FROM {} au WHERE au.{} = {}").format(
            deleted, source(config), ident(config.source.key), _key_param(shape)
        ),
    )


def repair_upsert(config: Config, shape: Shape) -> Step:
    """Params: user."""
    where = sql.SQL("au.{} = {}").format(ident(config.source.key), _key_param(shape))
    return Step(
        "repair: create or bring up to date the user's profile from the auth row as it is now",
        upsert_profile(config, shape, ident("au"), where, parameters=True),
    )


def repair_mark_deleted(config: Config, shape: Shape) -> Step:
    """Params: user. Marked deleted when the auth row was soft-deleted, else now."""
    at = (
        sql.SQL("coalesce((SELECT au.deleted_at FROM {} au WHERE au.{} = {}), now())").format(
            source(config), ident(config.source.key), _key_param(shape)
        )
        if shape.source_soft_delete
        else sql.SQL("now()")
    )
    return Step(
        "repair: the auth row is deleted or soft-deleted: mark the profile deleted",
        mark_deleted(config, shape, _key_param(shape), at),
    )


def _count_attempt(config: Config, title: str, changes: sql.SQL) -> Step:
    """One more attempt on every unresolved failure of a user (param: user), plus `changes`."""
    return Step(
        title,
        sql.SQL(
            "UPDATE {} SET attempts = attempts + 1, {} WHERE user_id = %(user)s AND resolved_at IS NULL"
        ).format(failures(config), changes),
    )


def resolve_failures(config: Config) -> Step:
    """Params: user, resolution."""
    return _count_attempt(
        config,
        "repair: mark the user's failures resolved",
        sql.SQL("resolved_at = now(), resolution = %(resolution)s"),
    )


def failed_again(config: Config) -> Step:
    """Params: user, sqlstate, message."""
    return _count_attempt(
        config,
        "repair: the retry failed too: count the attempt and keep the newest error",
        sql.SQL("sqlstate = %(sqlstate)s, message = %(message)s"),
    )
