"""The operations a program needs, each one call with a typed result, exported as
`ghostguard.scan`, `ghostguard.apply`, ...: the CLI's commands without the CLI. Each takes an open
connection (autocommit, as the non-superuser `postgres` on Supabase) and a Config (default: the
guide's), and validates the config against the live catalog first, as the commands do."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import psycopg

from ghostguard import catalog, deploy
from ghostguard import config as config_mod
from ghostguard.catalog import Shape
from ghostguard.checks import doctor as doctor_mod
from ghostguard.checks import scan as scan_mod
from ghostguard.checks import signup_kinds
from ghostguard.checks import verify as verify_mod
from ghostguard.checks.finding import FindingsReport
from ghostguard.checks.scan import ScanReport
from ghostguard.checks.signup_kinds import CheckReport
from ghostguard.checks.verify import VerifyReport
from ghostguard.config import Config
from ghostguard.deploy import ApplyOptions, ApplyPlan, ApplyResult
from ghostguard.rehearsal import Rehearsal
from ghostguard.rehearsal import project as project_mod
from ghostguard.rehearsal import run as rehearsal_run
from ghostguard.sandbox import Sandbox
from ghostguard.sync import rollback as rollback_mod
from ghostguard.sync.rollback import RollbackPlan, RollbackResult


def load_config(path: Path | str) -> Config:
    """A ghostguard.toml, validated (ConfigError names what is wrong)."""
    return config_mod.load(Path(path))


def _resolved(conn: psycopg.Connection, config: Config | None) -> tuple[Config, Shape]:
    chosen = config or Config()
    return chosen, catalog.resolve(conn, chosen)


def scan(conn: psycopg.Connection, config: Config | None = None) -> ScanReport:
    """Read-only: ghosts by kind, orphans, sync failures, trigger state, drift (`ghostguard scan`)."""
    return scan_mod.scan(conn, *_resolved(conn, config))


def verify(conn: psycopg.Connection, config: Config | None = None) -> VerifyReport:
    """The guide's five checks and success criteria (`ghostguard verify`)."""
    return verify_mod.verify(conn, *_resolved(conn, config))


def doctor(conn: psycopg.Connection, config: Config | None = None) -> FindingsReport:
    """Catalog checks with levels and exact fixes (`ghostguard doctor`)."""
    return doctor_mod.doctor(conn, *_resolved(conn, config))


def check(conn: psycopg.Connection, config: Config | None = None) -> CheckReport:
    """Every kind of signup, rolled back (`ghostguard check`); `.failing()` names the kinds."""
    return signup_kinds.check_or_name_holder(conn, *_resolved(conn, config))


def plan(conn: psycopg.Connection, config: Config | None = None) -> ApplyPlan:
    """What apply would run; `.text` is what `ghostguard apply --dry-run` prints."""
    return deploy.plan(conn, *_resolved(conn, config))


def apply(
    conn: psycopg.Connection, config: Config | None = None, options: ApplyOptions | None = None
) -> ApplyResult:
    """Preflight, install, audited backfill, verify (`ghostguard apply --yes`)."""
    return deploy.apply(conn, *_resolved(conn, config), options)


def rollback_plan(conn: psycopg.Connection, config: Config | None = None) -> RollbackPlan:
    """What rollback would run; `.text(config)` is what `ghostguard rollback --dry-run` prints."""
    return rollback_mod.plan(conn, config or Config())


def rollback(conn: psycopg.Connection, config: Config | None = None) -> RollbackResult:
    """Remove what ghostguard installed, put back what it took over (`ghostguard rollback --yes`)."""
    return rollback_mod.rollback(conn, config or Config())


def rehearse(
    migrations: Path | str,
    *,
    seed: Path | str | None = None,
    config: Config | None = None,
    accept_failing: Sequence[str] = (),
    supabase_config: Path | str | None = None,
    sandbox: Sandbox | None = None,
) -> Rehearsal:
    """Replay a migrations folder into the embedded sandbox and judge every signup kind
    (`ghostguard rehearse`); `.passed`, `.failing`. config.toml is read beside the folder unless
    `supabase_config` names it."""
    folder = Path(migrations)
    found = Path(supabase_config) if supabase_config else project_mod.beside(folder)
    return rehearsal_run.rehearse(
        sandbox or Sandbox(),
        folder,
        Path(seed) if seed else None,
        config,
        tuple(accept_failing),
        project=project_mod.load(found),
    )
