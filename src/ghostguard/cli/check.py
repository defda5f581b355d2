"""`ghostguard check`: the preflight of every signup kind, and the option apply shares with it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from ghostguard.checks import signup_kinds
from ghostguard.cli import render
from ghostguard.cli.common import (
    F,
    Output,
    connected,
    db_options,
    exit_code,
    finish,
    output_options,
    resolve_target,
    stdout_console,
)
from ghostguard.formats import collect


def accept_failing_option_for(known: tuple[str, ...], meaning: str) -> Callable[[F], F]:
    """`--accept-failing KIND,...` over the given kind names; `meaning` starts its help."""

    def parse(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
        try:
            return signup_kinds.parse_kinds(value, known)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return click.option(
        "--accept-failing",
        "accept_failing",
        default="",
        callback=parse,
        metavar="KIND,...",
        help=f"{meaning}: {', '.join(known)}.",
    )


accept_failing_option = accept_failing_option_for(
    tuple(signup_kinds.KINDS),
    "Signup kinds the project has that may end without a profile (recorded as sync failures) "
    "without failing",
)


@click.command("check")
@db_options
@accept_failing_option
@output_options
def check_cmd(
    db_url: str | None, config_path: Path | None, accept_failing: tuple[str, ...], output: Output
) -> None:
    """Preflight: every kind of signup, the Auth server's way, in one transaction that is rolled back.

    With the sync installed as apply would install it (inside the same transaction), signs up one
    user of each kind (email, phone, anonymous, Google, GitHub, Apple, Azure, SSO sharing an email,
    admin create with app metadata, email change, anonymous conversion, soft delete) and reports for
    each whether a profile appeared or which failure would be recorded. Changes nothing; holds a
    lock on auth.users for the moment it takes when the sync is not installed yet. Exits 1 when a
    kind the project has (it has users of it) would end without a profile, unless accepted.
    """
    target = resolve_target(db_url, config_path)
    with connected(target) as (conn, shape):
        report = signup_kinds.check_or_name_holder(conn, target.config, shape)
    passed = not report.failing(accept_failing)
    if output.text:
        render.check(stdout_console(), report, accept_failing)
    outcomes = collect.from_check(report, accept_failing)
    output.emit("check", report.to_dict(), outcomes, exit_code(passed), target.anchor)
    finish(passed)
