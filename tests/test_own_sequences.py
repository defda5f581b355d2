"""ghostguard's tables stay closed to the API roles, their identity sequences included: under the
pre-2026 default privileges anon could setval the failures table's sequence to its maximum, and
every later failure would go unrecorded."""

from __future__ import annotations

import json

import psycopg
import pytest

from conftest import Database, run, scalar

SEQUENCES = ("public.profile_sync_failures_id_seq",)  # the audit log keys on uuids


def test_sequences_are_revoked_under_the_old_default_grants(
    database: Database, conn: psycopg.Connection
) -> None:
    conn.execute(
        "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public "
        "GRANT ALL ON SEQUENCES TO anon, authenticated, service_role"
    )
    assert run("apply", "--yes", db=database).exit_code == 0
    for seq in SEQUENCES:
        for role in ("anon", "authenticated"):
            assert (
                scalar(conn, "SELECT has_sequence_privilege(%s, %s, 'USAGE, UPDATE')", role, seq)
                is False
            )
    with psycopg.connect(database.url) as attacker:
        attacker.execute("SET ROLE anon")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            attacker.execute(
                "SELECT setval('public.profile_sync_failures_id_seq', 9223372036854775807)"
            )
    doctor = json.loads(run("doctor", "--json", db=database).stdout)
    closed = {f["name"]: f["passed"] for f in doctor["findings"] if f["name"].endswith("_closed")}
    assert closed == {"audit_table_closed": True, "failures_table_closed": True}


def test_doctor_names_a_sequence_opened_later(database: Database, conn: psycopg.Connection) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    conn.execute("GRANT USAGE, UPDATE ON SEQUENCE public.profile_sync_failures_id_seq TO anon")
    doctor = run("doctor", "--json", db=database)
    found = next(
        f for f in json.loads(doctor.stdout)["findings"] if f["name"] == "failures_table_closed"
    )
    assert doctor.exit_code == 1
    assert found["passed"] is False
    assert found["detail"].endswith("its sequence usable by anon")
    conn.execute(found["remediation"])  # the fix doctor gives works as given
    assert scalar(conn, "SELECT has_sequence_privilege('anon', %s, 'USAGE')", SEQUENCES[0]) is False
