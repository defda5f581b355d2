"""What every CLI command shares: options, where the database is, confirmation, error handling."""

from __future__ import annotations

import functools
import io
import os
import re
import signal
import sys
from collections.abc import Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click
import psycopg
from rich.console import Console

from ghostguard import catalog, db, formats
from ghostguard import config as config_mod
from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.errors import ConfigError, ExitCode, GhostguardError, Interrupted, Refused
from ghostguard.runner import primary_message
from ghostguard.sandbox import Sandbox
from ghostguard.secrets import mask
from ghostguard.stopping import STOPS, signal_number

F = TypeVar("F", bound=Callable[..., Any])


class GhostguardGroup(click.Group):
    """Handles ghostguard errors once, at the edge: one masked line on stderr and the documented code."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command's summary whole (its first sentence), wrapped on spaces, not cut."""
        rows = [
            (name, command.get_short_help_str(limit=10_000))
            for name in self.list_commands(ctx)
            if (command := self.get_command(ctx, name)) is not None and not command.hidden
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Refused as exc:
            click.echo(f"refused: {mask(exc.message)}", err=True)
            ctx.exit(int(exc.exit_code))
        except Interrupted as exc:
            click.echo(f"interrupted: {mask(exc.message)}", err=True)
            ctx.exit(int(exc.exit_code))
        except STOPS as stop:  # any other command: each of its writes is its own transaction
            signum = signal_number(stop)
            click.echo(
                f"interrupted: stopped by {signal.Signals(signum).name}; every change ghostguard "
                "makes is its own transaction, so nothing is half-done: run the command again",
                err=True,
            )
            ctx.exit(128 + signum)
        except GhostguardError as exc:
            click.echo(f"error: {mask(exc.message)}", err=True)
            ctx.exit(int(exc.exit_code))
        except psycopg.errors.LockNotAvailable:
            click.echo(
                "error: a table ghostguard reads is locked by another session beyond lock_timeout; "
                "nothing was changed, run again when it finishes",
                err=True,
            )
            ctx.exit(int(ExitCode.ERROR))
        except psycopg.Error as exc:
            click.echo(f"error: database error: {primary_message(exc)}", err=True)
            ctx.exit(int(ExitCode.ERROR))


@contextmanager
def json_when_interrupted(as_json: bool) -> Generator[None, None, None]:
    """With --json, an interrupted run still prints a JSON document: what it did and how to resume."""
    try:
        yield
    except Interrupted as exc:
        if as_json:
            print_json(exc.result)
        raise


def db_options(func: F) -> F:
    """--db-url and --config, shared by every command that talks to a database."""
    func = click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        help=f"Config file (default: ./{config_mod.DEFAULT_CONFIG_FILE} if present, else the guide's defaults).",
    )(func)
    func = click.option(
        "--db-url",
        envvar=db.URL_ENV,
        metavar="URL",
        show_envvar=True,
        help="PostgreSQL URL to connect to, as the non-superuser `postgres` on Supabase. "
        "Without it (and without DATABASE_URL) the embedded sandbox is used.",
    )(func)
    return func


def json_option(func: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print the result as JSON on stdout."
    )(func)


@dataclass(frozen=True)
class Output:
    """Where a command's result goes: stdout in one format, and more formats into files."""

    format: str = formats.TEXT
    reports: tuple[tuple[str, Path], ...] = ()

    @property
    def text(self) -> bool:
        return self.format == formats.TEXT

    @property
    def as_json(self) -> bool:
        return self.format == formats.JSON

    def emit(
        self,
        command: str,
        data: dict[str, Any],
        outcomes: list[formats.Outcome],
        exit_code: int,
        anchor: formats.Location | None = None,
    ) -> None:
        """Every requested document: files first (CI uploads them whatever stdout shows)."""
        for fmt, path in self.reports:
            try:
                path.write_text(formats.render(fmt, command, data, outcomes, exit_code, anchor))
            except OSError as exc:
                raise ConfigError(
                    f"--report {fmt}={path}: cannot write it ({exc.strerror})"
                ) from None
        if not self.text:
            click.echo(
                formats.render(self.format, command, data, outcomes, exit_code, anchor), nl=False
            )


def _report(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> Any:
    parsed: list[tuple[str, Path]] = []
    for value in values:
        fmt, sep, path = value.partition("=")
        if not sep or not path or fmt not in formats.FORMATS[1:]:
            raise click.BadParameter(
                f"{value!r} is not FORMAT=FILE; formats: {', '.join(formats.FORMATS[1:])}"
            )
        if not Path(path).parent.is_dir():
            raise click.BadParameter(f"{value!r}: the folder {Path(path).parent} does not exist")
        parsed.append((fmt, Path(path)))
    return tuple(parsed)


def output_options(func: F) -> F:
    """--format, --json (the same as --format json) and --report FORMAT=FILE, given to the
    command as one `output` argument."""

    @functools.wraps(func)
    def command(
        *args: Any,
        output_format: str | None,
        as_json: bool,
        reports: tuple[tuple[str, Path], ...],
        **kwargs: Any,
    ) -> Any:
        if as_json and output_format not in (None, formats.JSON):
            raise click.UsageError(f"--json and --format {output_format} disagree: pass one")
        chosen = formats.JSON if as_json else (output_format or formats.TEXT)
        return func(*args, output=Output(chosen, reports), **kwargs)

    wrapped: Any = click.option(
        "--report",
        "reports",
        multiple=True,
        metavar="FORMAT=FILE",
        callback=_report,
        help="Also write the result in FORMAT to FILE (repeatable), e.g. sarif=ghostguard.sarif.",
    )(command)
    wrapped = click.option(
        "--json", "as_json", is_flag=True, help="Print the result as JSON (--format json)."
    )(wrapped)
    wrapped = click.option(
        "--format",
        "output_format",
        type=click.Choice(formats.FORMATS),
        help="What to print on stdout: text (default), json, sarif (SARIF 2.1.0 for code "
        "scanning), github (workflow annotations), junit (JUnit XML), splinter (rows shaped "
        "like `supabase db advisors`). The exit code is the same in every format.",
    )(wrapped)
    return wrapped  # type: ignore[no-any-return]


def yes_option(func: F) -> F:
    return click.option(
        "--yes", "-y", is_flag=True, help="Do not ask for confirmation (needed without a terminal)."
    )(func)


@dataclass(frozen=True)
class Target:
    url: str
    config: Config
    config_file: Path | None = None  # None: no ghostguard.toml, the defaults (the guide's)

    @property
    def where(self) -> str:
        return db.describe(self.url)

    @property
    def anchor(self) -> formats.Location | None:
        """Where code scanning shows a finding about the database: the config file, if any."""
        return formats.Location.of(self.config_file) if self.config_file else None


def _config_file(config_path: Path | None) -> Path | None:
    if config_path is not None:
        return config_path
    default = Path(config_mod.DEFAULT_CONFIG_FILE)
    return default if default.exists() else None


def load_config(config_path: Path | None) -> Config:
    found = _config_file(config_path)
    return config_mod.load(found) if found is not None else Config()


def resolve_target(db_url: str | None, config_path: Path | None) -> Target:
    """The database to use: --db-url, DATABASE_URL, or else the embedded sandbox (started if needed)."""
    config = load_config(config_path)
    config_file = _config_file(config_path)
    if db_url and db_url.strip():
        db.parse(db_url)
        return Target(db_url, config, config_file)
    sandbox = Sandbox()
    sandbox.start()
    url = sandbox.url()
    note(f"no --db-url or {db.URL_ENV}: using the embedded sandbox ({db.describe(url)})")
    return Target(url, config, config_file)


@contextmanager
def connected(target: Target) -> Generator[tuple[psycopg.Connection, Shape], None, None]:
    """An autocommit connection and the config validated against the live catalog."""
    with db.connection(
        target.url, autocommit=True, lock_timeout=target.config.lock_timeout
    ) as conn:
        try:
            shape = catalog.resolve(conn, target.config)
        except ConfigError as exc:
            if target.config_file is not None:  # name the file, as its own errors do
                raise ConfigError(f"{target.config_file}: {exc.message}") from None
            raise ConfigError(
                f"no {config_mod.DEFAULT_CONFIG_FILE} here and the defaults do not fit this "
                f"database ({exc.message}): run `ghostguard init` to write one that does"
            ) from None
        yield conn, shape


def confirm(yes: bool, question: str) -> None:
    """Ask on a terminal; without one, refuse unless --yes was given. Nothing has changed yet either way."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise Refused(
            f"{question} needs confirmation and there is no terminal to ask on: pass --yes"
        )
    if not click.confirm(f"{question}?", default=False, err=True):
        raise Refused("not confirmed: nothing was changed")


def note(message: str) -> None:
    """Progress and context go to stderr, so stdout stays clean for results, SQL and JSON."""
    click.echo(mask(message), err=True)


class _NoTrailingSpaces(io.StringIO):
    """Piped output without the padding a table adds to every line."""

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self._out = out

    def write(self, text: str) -> int:
        self._out.write(_TRAILING.sub("\n", text))
        return len(text)

    def flush(self) -> None:
        self._out.flush()


_TRAILING = re.compile(r"[ \t]+\n")
PIPED_WIDTH = 120  # a pipe has no width: COLUMNS when set, else this


def stdout_console() -> Console:
    """A terminal's own width; piped, COLUMNS (or 120) and no trailing spaces."""
    if sys.stdout.isatty():
        return Console(file=sys.stdout, highlight=False, soft_wrap=False)
    columns = os.environ.get("COLUMNS", "")
    return Console(
        file=_NoTrailingSpaces(sys.stdout),
        highlight=False,
        soft_wrap=False,
        width=int(columns) if columns.isdigit() else PIPED_WIDTH,
    )


def print_json(data: Any) -> None:
    click.echo(formats.as_json(data), nl=False)


def exit_code(ok: bool) -> int:
    """The code `finish` exits with."""
    return 0 if ok else int(ExitCode.CHECKS_FAILED)


def finish(ok: bool) -> None:
    """Exit 0 when everything passed, else the 'checks failed' code."""
    if not ok:
        click.get_current_context().exit(int(ExitCode.CHECKS_FAILED))
