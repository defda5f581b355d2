"""monitor: a running monitor against a real database, scraped over HTTP, with real webhooks."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from conftest import PG_BIN_ENV, Database, run, scalar
from ghostguard.config import TableRef
from ghostguard.monitor.alerts import Alert, WebhookSender
from ghostguard.monitor.page import downsample
from ghostguard.monitor.state import Sample, SignupCounter
from ghostguard.sandbox import Sandbox
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer
from monitoring import running_monitor, wait_for, webhook_receiver


def _signup(database: Database, email: str) -> None:
    """One signup on its own connection: the backend exits and flushes its statistics."""
    with psycopg.connect(database.auth_url, autocommit=True) as c:
        AuthServer(c).signup(authserver.email_user(email, full_name="M"))


def test_metrics_follow_trigger_removal_new_ghosts_and_a_deleted_profile(
    database: Database, conn: psycopg.Connection
) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    with running_monitor(database.url, interval=0.2, full_every=1.0) as mon:
        wait_for(lambda: mon.metric("ghostguard_ghost_users_total"), lambda v: v == 0)
        assert mon.metric("ghostguard_database_up") == 1
        assert mon.metric("ghostguard_trigger_drift") == 0
        for name in ("on_auth_user_created", "on_auth_user_updated", "on_auth_user_deleted"):
            assert mon.metric("ghostguard_trigger_installed", trigger=name) == 1
            assert mon.metric("ghostguard_trigger_enabled", trigger=name) == 1
        assert mon.metric("ghostguard_backfill_state", status="success") == 1

        _signup(database, "first@example.com")
        wait_for(lambda: mon.metric("ghostguard_signups_total"), lambda v: v == 1)
        assert mon.metric("ghostguard_ghost_users_total") == 0

        assert run("rollback", "--yes", db=database).exit_code == 0
        wait_for(lambda: mon.metric("ghostguard_trigger_drift"), lambda v: v == 1, timeout=2)
        assert mon.metric("ghostguard_trigger_installed", trigger="on_auth_user_created") == 0
        assert (
            mon.metric(
                "ghostguard_drift_problem",
                problem="trigger on_auth_user_created on auth.users is missing",
            )
            == 1
        )

        for i in range(3):
            _signup(database, f"ghost{i}@example.com")
        wait_for(lambda: mon.metric("ghostguard_ghost_users", kind="email"), lambda v: v == 3)
        wait_for(lambda: mon.metric("ghostguard_signups_total"), lambda v: v == 4)

        conn.execute("DELETE FROM public.users WHERE email = 'first@example.com'")
        wait_for(lambda: mon.metric("ghostguard_ghost_users_total"), lambda v: v == 4)
        assert mon.metric("ghostguard_auth_users") == 4
        assert mon.metric("ghostguard_profiles") == 0


def test_a_deleted_profile_triggers_an_early_reconciliation(
    database: Database, conn: psycopg.Connection
) -> None:
    """With a full reconciliation only every 10 minutes, the statistics hint brings it forward."""
    assert run("apply", "--yes", db=database).exit_code == 0
    _signup(database, "kept@example.com")
    with running_monitor(database.url, interval=0.3, full_every=600) as mon:
        first = wait_for(lambda: mon.status(), lambda d: d["ghosts"] is not None)
        assert first["ghosts"]["total"] == 0
        with psycopg.connect(database.url, autocommit=True) as other:
            other.execute("DELETE FROM public.users")
        # only a new full reconciliation can change the count: the next one was 10 minutes away
        status = wait_for(lambda: mon.status(), lambda d: d["ghosts"]["total"] == 1, timeout=20)
        assert status["counts"]["profiles"] == 0


def test_a_tick_reads_neither_user_table(database: Database, conn: psycopg.Connection) -> None:
    """The cost model: ticks between full reconciliations do no scan of auth.users or profiles."""
    assert run("apply", "--yes", db=database).exit_code == 0
    scans = (
        "SELECT sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)) FROM pg_stat_user_tables "
        "WHERE (schemaname, relname) IN (('auth', 'users'), ('public', 'users'))"
    )
    with running_monitor(database.url, interval=0.1, full_every=600) as mon:
        wait_for(lambda: mon.status(), lambda d: d["ghosts"] is not None)
        time.sleep(1.5)  # statistics of the monitor's backend are flushed at most once a second
        before = scalar(conn, scans)
        ticks_before = mon.metric("ghostguard_last_tick_timestamp_seconds")
        time.sleep(2.5)
        ticks_after = mon.metric("ghostguard_last_tick_timestamp_seconds")
    time.sleep(1.5)
    assert ticks_before is not None and ticks_after is not None and ticks_after > ticks_before
    assert scalar(conn, scans) == before


def test_sync_failures_show_up_within_a_tick(
    database: Database, conn: psycopg.Connection, admin: psycopg.Connection
) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    conn.execute("ALTER TABLE public.users ADD CONSTRAINT no_bad CHECK (email NOT LIKE 'bad%')")
    with running_monitor(database.url, interval=0.2, full_every=600) as mon:
        wait_for(lambda: mon.metric("ghostguard_sync_failures_unresolved"), lambda v: v == 0)
        _signup(database, "bad1@example.com")
        _signup(database, "bad2@example.com")
        wait_for(lambda: mon.metric("ghostguard_sync_failures_unresolved"), lambda v: v == 2, 2)
        assert mon.metric("ghostguard_sync_failures_last_hour") == 2
        # the failed signups are ghosts; the statistics hint brings the reconciliation forward
        wait_for(lambda: mon.metric("ghostguard_ghost_users_total"), lambda v: v == 2, 20)


def test_function_timing_unavailable_then_measured(
    database: Database, admin: psycopg.Connection
) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    with running_monitor(database.url) as mon:
        wait_for(lambda: mon.metric("ghostguard_function_timing_available"), lambda v: v == 0)
        command = f"ALTER DATABASE \"{database.name}\" SET track_functions = 'pl';"
        assert (
            mon.metric("ghostguard_function_timing_info", track_functions="none", enable=command)
            == 1
        )
        assert mon.status()["function_timing"]["enable"] == command
    admin.execute(command)  # the command the metric names, run as a superuser
    for i in range(3):
        _signup(database, f"timed{i}@example.com")
    with running_monitor(database.url) as mon:
        calls = wait_for(lambda: mon.metric("ghostguard_function_calls_total"), lambda v: v == 3)
        assert calls == 3
        assert mon.metric("ghostguard_function_timing_available") == 1
        mean = mon.metric("ghostguard_function_mean_seconds")
        assert mean is not None and 0 < mean < 1


def test_one_alert_per_incident_and_one_resolution(
    database: Database, conn: psycopg.Connection
) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    with webhook_receiver() as hook:
        with running_monitor(
            database.url, interval=0.2, full_every=0.6, webhooks=[hook.url]
        ) as mon:
            wait_for(lambda: mon.metric("ghostguard_ghost_users_total"), lambda v: v == 0)
            time.sleep(0.6)
            assert hook.bodies == []  # healthy: nothing to say
            assert run("rollback", "--yes", db=database).exit_code == 0
            _signup(database, "lost@example.com")
            wait_for(lambda: sorted(hook.by_incident()), lambda v: len(v) == 2)
            time.sleep(1.5)  # several more ticks and reconciliations while both still hold
            assert sorted(hook.by_incident()) == [
                ("ghosts", "firing"),
                ("trigger_drift", "firing"),
            ]
            assert run("apply", "--yes", db=database).exit_code == 0  # reinstalls and backfills
            wait_for(lambda: len(hook.bodies), lambda n: n == 4)
            time.sleep(1.5)
        assert sorted(hook.by_incident()) == [
            ("ghosts", "firing"),
            ("ghosts", "resolved"),
            ("trigger_drift", "firing"),
            ("trigger_drift", "resolved"),
        ]
    ghosts = next(b for b in hook.bodies if b["incident"] == "ghosts" and b["state"] == "firing")
    assert ghosts["text"].startswith("ghostguard: 1 ghost users (threshold 0): email 1")
    assert ghosts["content"] == ghosts["text"]
    assert ghosts["database"] == mon.monitor.state.where
    drift = next(b for b in hook.bodies if b["incident"] == "trigger_drift")
    assert "on_auth_user_created on auth.users is missing" in drift["text"]
    assert "`ghostguard apply --yes`" in drift["text"]
    assert any(line.startswith("ghostguard: resolved:") for line in mon.log)


def test_ghost_threshold_holds_back_the_alert(database: Database) -> None:
    with webhook_receiver() as hook:
        with running_monitor(database.url, webhooks=[hook.url], ghost_threshold=2) as mon:
            _signup(database, "a@example.com")
            _signup(database, "b@example.com")
            wait_for(lambda: mon.metric("ghostguard_ghost_users_total"), lambda v: v == 2)
            time.sleep(1.2)
            assert "ghosts" not in [i for i, _ in hook.by_incident()]
            _signup(database, "c@example.com")
            wait_for(lambda: hook.by_incident(), lambda v: ("ghosts", "firing") in v)


def test_webhook_retries_with_backoff_and_never_blocks() -> None:
    with webhook_receiver(fail_first=2) as hook:
        sender = WebhookSender([hook.url], attempts=4, backoff=0.05)
        started = time.perf_counter()
        sender.send(Alert("ghosts", "firing", "ghostguard: 3 ghost users", "db", time.time()))
        assert time.perf_counter() - started < 0.05  # send only queues
        wait_for(lambda: sender.delivered, lambda n: n == 1)
        sender.close()
    assert hook.requests == 3
    assert hook.by_incident() == [("ghosts", "firing")]
    assert sender.failed == 0


def test_webhook_gives_up_after_its_attempts_and_names_no_secret() -> None:
    log: list[str] = []
    with webhook_receiver(fail_first=10) as hook:
        sender = WebhookSender([hook.url], attempts=3, backoff=0.01, log=log.append)
        sender.send(Alert("ghosts", "firing", "x", "db", time.time()))
        wait_for(lambda: sender.failed, lambda n: n == 1)
        sender.close()
    assert hook.requests == 3 and hook.bodies == []
    assert len(log) == 3 and "attempt 3/3 failed" in log[-1]
    assert not any("secret-token" in line for line in log)


def test_a_dead_receiver_delays_no_other() -> None:
    with socket.socket() as dead:  # accepts the connection, never answers
        dead.bind(("127.0.0.1", 0))
        dead.listen(8)
        dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}/hooks/dead"
        with webhook_receiver() as hook:
            sender = WebhookSender([dead_url, hook.url], attempts=2, backoff=0.05, timeout=3.0)
            sender.send(Alert("ghosts", "firing", "x", "db", time.time()))
            wait_for(lambda: sender.delivered, lambda n: n == 1)
            # delivered to the live one while the dead one is still being tried
            assert sender.failed == 0
            assert hook.by_incident() == [("ghosts", "firing")]
            sender.close(wait=0.1)


def test_a_webhook_url_with_credentials_works_and_logs_none() -> None:
    log: list[str] = []
    with webhook_receiver(fail_first=1) as hook:
        url = hook.url.replace("http://", "http://alerts:p%40ss-word@")
        sender = WebhookSender([url], attempts=2, backoff=0.01, log=log.append)
        sender.send(Alert("ghosts", "firing", "x", "db", time.time()))
        wait_for(lambda: sender.delivered, lambda n: n == 1)
        sender.close()
    token = base64.b64encode(b"alerts:p@ss-word").decode()
    assert hook.authorizations == [f"Basic {token}", f"Basic {token}"]
    assert hook.by_incident() == [("ghosts", "firing")]
    assert len(log) == 1 and "alerts" not in log[0] and "ss-word" not in log[0]
    assert "secret-token" not in log[0]


def test_database_stopped_and_restarted_under_a_running_monitor(tmp_path: Path) -> None:
    pg_bin = os.environ.get(PG_BIN_ENV, "").strip()
    box = Sandbox(tmp_path / "own", Path(pg_bin) if pg_bin else None)
    box.start()
    try:
        url = box.fresh_database("restarts")
        with webhook_receiver() as hook:
            with running_monitor(url, interval=0.2, full_every=1.0, webhooks=[hook.url]) as mon:
                wait_for(lambda: mon.metric("ghostguard_database_up"), lambda v: v == 1)
                box.stop()
                wait_for(lambda: mon.metric("ghostguard_database_up"), lambda v: v == 0)
                code, body = mon.get("/healthz")
                assert code == 200 and '"database_reachable": false' in body
                assert mon.status()["error"]
                wait_for(lambda: hook.by_incident(), lambda v: ("unreachable", "firing") in v)
                box.start()
                wait_for(lambda: mon.metric("ghostguard_database_up"), lambda v: v == 1, 20)
                wait_for(lambda: hook.by_incident(), lambda v: ("unreachable", "resolved") in v)
                time.sleep(0.5)
            assert [b for b in hook.by_incident() if b[0] == "unreachable"] == [
                ("unreachable", "firing"),
                ("unreachable", "resolved"),
            ]
            assert any("unreachable" in line for line in mon.log)
            assert any("reachable again" in line for line in mon.log)
    finally:
        box.server.delete()


def test_unreachable_at_start_is_reported_not_fatal() -> None:
    with running_monitor("postgresql://postgres@127.0.0.1:1/postgres") as mon:
        wait_for(lambda: mon.metric("ghostguard_database_up"), lambda v: v == 0)
        status = mon.status()
        assert status["database_reachable"] is False
        assert "cannot connect" in status["error"]
        assert "Needs attention" in mon.get("/status")[1]


def test_history_table_is_kept_closed_and_reloaded(
    database: Database, conn: psycopg.Connection
) -> None:
    table = TableRef("public", "ghostguard_monitor_history")
    with running_monitor(database.url, history_table=table) as mon:
        wait_for(
            lambda: scalar(conn, "SELECT count(*) FROM public.ghostguard_monitor_history"),
            lambda n: n >= 3,
        )
        first = len(mon.status()["history"]["at"])
    assert (
        scalar(
            conn,
            "SELECT relrowsecurity FROM pg_class WHERE oid = 'public.ghostguard_monitor_history'::regclass",
        )
        is True
    )
    for role in ("anon", "authenticated", "service_role"):
        assert (
            scalar(
                conn,
                "SELECT has_table_privilege(%s, 'public.ghostguard_monitor_history', 'SELECT')",
                role,
            )
            is False
        )
    stored = scalar(conn, "SELECT count(*) FROM public.ghostguard_monitor_history")
    with running_monitor(database.url, history_table=table) as mon:
        reloaded = len(mon.status()["history"]["at"])
    assert isinstance(stored, int) and reloaded >= stored >= first


def test_status_page_and_json_say_the_same(database: Database) -> None:
    _signup(database, "ghost@example.com")
    with running_monitor(database.url) as mon:
        doc = wait_for(lambda: mon.status(), lambda d: d["ghosts"] is not None)
        code, page = mon.get("/status")
        assert code == 200
        assert f'<dd id="ghosts-total">{doc["ghosts"]["total"]}</dd>' in page
        assert '<dd id="ghosts-by-kind">email 1</dd>' in page
        assert '<meta http-equiv="refresh"' in page and "<script" not in page
        assert doc["healthy"] is False and doc["problems"]
        assert mon.get("/nowhere")[0] == 404


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_monitor_stops_cleanly_on_a_signal(database: Database, signum: signal.Signals) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ghostguard",
            "monitor",
            "--db-url",
            database.url,
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "200ms",
            "--full-every",
            "1s",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "monitoring postgres@" in line and "/metrics" in line
        time.sleep(0.8)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert f"{signum.name}: stopping" in err and "monitor stopped" in err
    assert "Traceback" not in err


def test_cli_monitor_rejects_bad_input_with_one_line(database: Database) -> None:
    cases = {
        ("--interval", "0s"): "not a positive duration",
        ("--full-every", "soon"): "not a positive duration",
        ("--listen", "localhost"): "is not HOST:PORT",
        ("--alert-webhook", "ftp://example.com/x"): "http:// or https://",
        ("--history-table", "public.bad-name"): "is not a table name",
        ("--ghost-threshold", "-1"): "-1",
    }
    for args, message in cases.items():
        result = run("monitor", *args, db=database)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_cli_monitor_refuses_a_port_in_use_and_a_config_that_does_not_match(
    database: Database, conn: psycopg.Connection
) -> None:
    with running_monitor(database.url) as mon:
        port = mon.monitor.server.address[1]
        result = run("monitor", "--listen", f"127.0.0.1:{port}", db=database)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    config = Path(tempfile.mkdtemp()) / "ghostguard.toml"
    config.write_text('[target]\nschema = "public"\ntable = "profiles"\n')
    result = run("monitor", "--listen", "127.0.0.1:0", "--config", str(config), db=database)
    assert result.exit_code == 2
    assert result.stderr.startswith("error:") and "public.profiles" in result.stderr


def test_a_locked_table_skips_a_reading_without_calling_the_database_unreachable(
    database: Database, conn: psycopg.Connection
) -> None:
    with webhook_receiver() as hook:
        with running_monitor(
            database.url, interval=0.2, full_every=0.2, webhooks=[hook.url]
        ) as mon:
            wait_for(lambda: mon.metric("ghostguard_ghost_users_total"), lambda v: v == 0)
            with psycopg.connect(database.url) as locker:  # a transaction holding the lock
                locker.execute("LOCK TABLE public.users IN ACCESS EXCLUSIVE MODE")
                wait_for(lambda: mon.log, lambda log: any("tick skipped" in m for m in log), 10)
                assert mon.metric("ghostguard_database_up") == 1
            ticked = wait_for(
                lambda: mon.metric("ghostguard_last_full_reconciliation_timestamp_seconds"),
                lambda v: v is not None and v > time.time() - 1,
            )
            assert ticked
    assert "unreachable" not in [incident for incident, _ in hook.by_incident()]
    assert not any("unreachable" in line for line in mon.log)


def test_charts_keep_the_worst_of_each_bucket_and_counters_survive_a_reset() -> None:
    samples = [Sample(float(i), 0, i, 0) for i in range(1000)]
    samples[500] = Sample(500.0, 7, 500, 3)  # a short spike among 1,000 samples
    points = downsample(samples, 100)
    assert len(points) == 100
    assert max(p.ghosts or 0 for p in points) == 7 and max(p.failures or 0 for p in points) == 3
    assert points[-1].signups == 999
    counter = SignupCounter()
    for cumulative in (100, 105, 3, 10):  # the statistics were reset after 105
        counter.observe(cumulative)
    assert counter.total == 5 + 3 + 7


def test_healthz_says_stalled_when_the_loop_stops_ticking(database: Database) -> None:
    with running_monitor(database.url) as mon:
        assert mon.get("/healthz")[0] == 200
        mon.monitor.endpoints.last_loop = lambda: time.time() - 3600  # as if stuck for an hour
        code, body = mon.get("/healthz")
        assert code == 503 and '"status": "stalled"' in body
