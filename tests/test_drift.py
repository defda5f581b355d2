"""Drift: apply records digests of what it installed; scan, verify, doctor and monitor report any
difference from them, and `apply` makes it go away."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from conftest import Database, run, scalar
from monitoring import running_monitor, wait_for

REPLACED = (
    "CREATE OR REPLACE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql "
    "SECURITY DEFINER SET search_path = '' AS $$ BEGIN RETURN NULL; END $$"
)

# name -> (SQL as postgres, SQL as the table owner's superuser, the drift message expected)
DRIFTS = {
    "function replaced": (
        REPLACED,
        "",
        "function public.handle_new_user() was replaced since ghostguard installed it on ",
    ),
    "trigger recreated differently": (
        "CREATE OR REPLACE TRIGGER on_auth_user_created AFTER INSERT ON auth.users "
        "FOR EACH ROW EXECUTE FUNCTION public.handle_new_user()",
        "",
        "trigger on_auth_user_created was recreated differently since ghostguard installed it",
    ),
    "duplicated": (
        "CREATE TRIGGER copy_of_sync AFTER INSERT ON auth.users "
        "FOR EACH ROW EXECUTE FUNCTION public.handle_new_user()",
        "",
        "trigger copy_of_sync also calls public.handle_new_user(): each row is synced twice",
    ),
    "search_path not empty": (  # scan's structural check once passed this: one judgment now
        "ALTER FUNCTION public.handle_new_user() SET search_path = public",
        "",
        "search_path = public: a SECURITY DEFINER function must pin search_path = ''",
    ),
    "disabled": (
        "",
        "ALTER TABLE auth.users DISABLE TRIGGER on_auth_user_updated",
        "trigger on_auth_user_updated is disabled (D)",
    ),
    "pointing elsewhere": (
        "CREATE FUNCTION public.other() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; "
        "END $$; CREATE OR REPLACE TRIGGER on_auth_user_deleted AFTER DELETE ON auth.users "
        "FOR EACH ROW EXECUTE FUNCTION public.other()",
        "",
        "trigger on_auth_user_deleted calls public.other(), not public.handle_new_user()",
    ),
}


def test_apply_records_what_it_installed(database: Database, conn: psycopg.Connection) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    details = scalar(
        conn,
        "SELECT details FROM public.cleanup_audit_log WHERE job_name = 'install_user_sync'",
    )
    assert isinstance(details, dict)
    assert details["function_md5"] == scalar(
        conn, "SELECT md5(pg_get_functiondef('public.handle_new_user()'::regprocedure))"
    )
    assert sorted(details["triggers"]) == [
        "on_auth_user_created",
        "on_auth_user_deleted",
        "on_auth_user_updated",
    ]
    assert details["triggers"]["on_auth_user_created"] == scalar(
        conn,
        "SELECT md5(pg_get_triggerdef(oid)) FROM pg_trigger WHERE tgname = 'on_auth_user_created'",
    )
    scanned = json.loads(run("scan", "--json", db=database).stdout)
    assert scanned["drift"] == []


@pytest.mark.parametrize("kind", list(DRIFTS), ids=list(DRIFTS))
def test_drift_is_reported_by_scan_verify_and_doctor_and_apply_mends_it(
    kind: str, database: Database, conn: psycopg.Connection, admin: psycopg.Connection
) -> None:
    as_postgres, as_owner, message = DRIFTS[kind]
    assert run("apply", "--yes", db=database).exit_code == 0
    if as_postgres:
        conn.execute(as_postgres)
    if as_owner:
        admin.execute(as_owner)
    scan = run("scan", "--json", "--fail-on", "drift", db=database)
    assert scan.exit_code == 1
    assert any(d.startswith(message) for d in json.loads(scan.stdout)["drift"]), scan.stdout
    verify = run("verify", "--json", db=database)
    assert verify.exit_code == 1
    check = next(c for c in json.loads(verify.stdout)["checks"] if c["name"] == "no_drift")
    assert not check["passed"] and message in check["detail"]
    assert check["remediation"] == "run `ghostguard apply --yes` to reinstall them"
    doctor = json.loads(run("doctor", "--json", db=database).stdout)
    installed = next(f for f in doctor["findings"] if f["check"] == "sync_installed")
    assert not installed["passed"] and message in installed["detail"]
    if kind == "duplicated":
        conn.execute("DROP FUNCTION public.handle_new_user() CASCADE")  # rollback would refuse
    assert run("apply", "--yes", db=database).exit_code == 0
    if kind == "disabled":  # CREATE OR REPLACE TRIGGER re-enables it
        assert (
            scalar(conn, "SELECT tgenabled FROM pg_trigger WHERE tgname = 'on_auth_user_updated'")
            == "O"
        )
    after = json.loads(run("scan", "--json", "--fail-on", "drift", db=database).stdout)
    assert after["drift"] == []


def test_a_changed_config_is_drift_until_applied(database: Database, tmp_path: Path) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    config = tmp_path / "ghostguard.toml"
    config.write_text('[mapping]\nemail = { column = "email" }\n')
    scan = run("scan", "--json", "--config", str(config), "--fail-on", "drift", db=database)
    assert (
        "the config differs from the one apply installed with" in json.loads(scan.stdout)["drift"]
    )
    assert run("apply", "--yes", "--config", str(config), db=database).exit_code == 0
    scan = run("scan", "--json", "--config", str(config), "--fail-on", "drift", db=database)
    assert scan.exit_code == 0


def test_monitor_reports_a_replaced_function(database: Database, conn: psycopg.Connection) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    with running_monitor(database.url) as mon:
        wait_for(lambda: mon.metric("ghostguard_trigger_drift"), lambda v: v == 0)
        conn.execute(REPLACED)
        wait_for(lambda: mon.metric("ghostguard_trigger_drift"), lambda v: v == 1, timeout=3)
        problems = [k for k in mon.metrics() if k[0] == "ghostguard_drift_problem"]
        assert len(problems) == 1
        assert dict(problems[0][1])["problem"].startswith(DRIFTS["function replaced"][2])
