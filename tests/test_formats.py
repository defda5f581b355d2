"""`--format` and `--report` on scan, verify, doctor, check and rehearse: SARIF validated against
the official 2.1.0 schema, JUnit read back by junitparser, workflow annotations located in the
migration file and line that caused the finding, splinter's row shape; the exit code unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jsonschema
import junitparser
import psycopg
import pytest

from conftest import Database, make_ghosts, run
from ghostguard.sandbox import Sandbox
from ghostguard.supabase.authserver import AuthServer
from test_rehearse import PROFILES, _folder, _rehearse_args

SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "sarif-schema-2.1.0.json").read_text())
SPLINTER_KEYS = {
    "name",
    "title",
    "level",
    "facing",
    "categories",
    "description",
    "detail",
    "remediation",
    "metadata",
    "cache_key",
}
NOT_NULL_LATER = """-- usernames are required from now on
-- (the app always asks for one)

alter table public.profiles
  add column username text not null;
"""
DROPS_TRIGGER = """-- move profile creation to the app
select 1;

drop trigger if exists on_auth_user_created on auth.users;
"""


def valid_sarif(text: str) -> dict[str, Any]:
    document = json.loads(text)
    jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(document)
    return document


def junit_cases(path: Path) -> dict[str, junitparser.TestCase]:
    xml = junitparser.JUnitXml.fromfile(str(path))
    return {case.name: case for suite in xml for case in suite}


def _results(document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(document["runs"][0]["results"])


def _write_reports(tmp_path: Path) -> list[str]:
    return [
        f"--report=junit={tmp_path / 'out.xml'}",
        f"--report=github={tmp_path / 'out.txt'}",
        f"--report=splinter={tmp_path / 'out.splinter.json'}",
        f"--report=json={tmp_path / 'out.json'}",
    ]


def test_rehearse_locates_a_not_null_column_in_the_migration_that_added_it(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _folder(
        tmp_path,
        **{"20240101000000_profiles": PROFILES, "20240201000000_username": NOT_NULL_LATER},
    )
    result = run(
        "rehearse", *_rehearse_args(sandbox, folder), "--format", "sarif", *_write_reports(tmp_path)
    )
    assert result.exit_code == 1, result.output
    document = valid_sarif(result.stdout)
    where = "supabase/migrations/20240201000000_username.sql"
    email = next(r for r in _results(document) if r["properties"]["case"] == "email")
    assert email["ruleId"] == "signup_kind" and email["level"] == "error"
    assert email["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": where},
        "region": {"startLine": 4},  # the ALTER TABLE, after the comments
    }
    assert 'null value in column "username"' in email["message"]["text"]
    rules = document["runs"][0]["tool"]["driver"]["rules"]
    assert rules[email["ruleIndex"]]["id"] == "signup_kind"
    assert rules[email["ruleIndex"]]["fullDescription"]["text"]
    assert "\nFix: map the column" in rules[email["ruleIndex"]]["help"]["text"]

    annotations = (tmp_path / "out.txt").read_text().splitlines()
    assert any(
        a.startswith(f"::error file={where},line=4,title=ghostguard ") and "(email)" in a
        for a in annotations
    ), annotations
    assert all(a.startswith(("::error ", "::warning ")) for a in annotations)

    cases = junit_cases(tmp_path / "out.xml")
    assert cases["signup_kind[email]"].result, "a failing kind is a failed test case"
    assert isinstance(cases["signup_kind[email]"].result[0], junitparser.Failure)
    located = ElementTree.parse(tmp_path / "out.xml").find(
        ".//testcase[@name='signup_kind[email]']"
    )
    assert located is not None and located.get("file") == where and located.get("line") == "4"
    xml = junitparser.JUnitXml.fromfile(str(tmp_path / "out.xml"))
    assert sum(suite.failures for suite in xml) >= 1

    rows = json.loads((tmp_path / "out.splinter.json").read_text())
    assert rows and all(set(row) == SPLINTER_KEYS for row in rows)
    email_row = next(r for r in rows if r["metadata"]["case"] == "email")
    assert email_row["level"] == "ERROR" and email_row["metadata"]["line"] == 4
    assert email_row["cache_key"] == "signup_kind_email"

    as_json = json.loads((tmp_path / "out.json").read_text())
    assert as_json["passed"] is False and as_json["causes"]["email"] == {"path": where, "line": 4}


def test_rehearse_locates_the_statement_that_dropped_the_trigger(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _folder(
        tmp_path,
        **{"20240101000000_profiles": PROFILES, "20240301000000_app_made": DROPS_TRIGGER},
    )
    result = run("rehearse", *_rehearse_args(sandbox, folder), "--format", "github")
    assert result.exit_code == 1
    where = "supabase/migrations/20240301000000_app_made.sql"
    assert (
        f"::error file={where},line=4,title=ghostguard No migration drops the profile trigger"
        in (result.stdout)
    ), result.stdout


def test_a_migration_that_fails_is_an_annotation_on_its_line(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _folder(
        tmp_path,
        **{"20240101000000_profiles": PROFILES, "20240401000000_typo": "select 1;\n\nselec 2;\n"},
    )
    args = _rehearse_args(sandbox, folder)
    result = run("rehearse", *args, "--format", "sarif", f"--report=junit={tmp_path / 'r.xml'}")
    assert result.exit_code == 2
    failed = _results(valid_sarif(result.stdout))
    assert [r["ruleId"] for r in failed] == ["migration_replays"]
    assert failed[0]["locations"][0]["physicalLocation"]["region"] == {"startLine": 3}
    assert '"selec"' in failed[0]["message"]["text"]
    assert "failures" in (tmp_path / "r.xml").read_text()
    github = run("rehearse", *args, "--format", "github")
    assert github.stdout.startswith(
        "::error file=supabase/migrations/20240401000000_typo.sql,line=3,"
    )


def test_a_passing_rehearsal_has_no_results_and_every_case_passes(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, **{"20240101000000_profiles": PROFILES})
    result = run(
        "rehearse", *_rehearse_args(sandbox, folder), "--format", "junit", "--report",
        f"sarif={tmp_path / 'r.sarif'}",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (tmp_path / "r.xml").write_text(result.stdout)
    cases = junit_cases(tmp_path / "r.xml")
    assert "signup_kind[email]" in cases and "lifecycle[sign_in]" in cases
    assert all(case.is_passed for case in cases.values())
    assert _results(valid_sarif((tmp_path / "r.sarif").read_text())) == []


def test_database_commands_print_every_format_with_their_exit_code(
    database: Database, auth: AuthServer, conn: psycopg.Connection, tmp_path: Path
) -> None:
    make_ghosts(auth, conn)
    (tmp_path / "ghostguard.toml").write_text("")  # the defaults; code scanning anchors here
    for command, code in (("scan", 1), ("verify", 1), ("doctor", 1), ("check", 0)):
        text = run(command, db=database)
        assert text.exit_code == code, (command, text.output)
        sarif = run(command, "--format", "sarif", *_write_reports(tmp_path), db=database)
        assert sarif.exit_code == code, (command, sarif.output)
        results = _results(valid_sarif(sarif.stdout))
        if code:
            assert any(r["level"] == "error" for r in results), command
        prints = [r["partialFingerprints"]["ghostguardFinding/v1"] for r in results]
        assert len(set(prints)) == len(prints), command  # one anchor, yet no two alike
        for r in results:  # code scanning needs a file: the config, at line 1
            assert r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
                "ghostguard.toml"
            )
        cases = junit_cases(tmp_path / "out.xml")
        failed = [name for name, case in cases.items() if not case.is_passed]
        assert bool(failed) == bool(code), (command, failed)
        rows = json.loads((tmp_path / "out.splinter.json").read_text())
        assert all(set(row) == SPLINTER_KEYS for row in rows)
        assert json.loads((tmp_path / "out.json").read_text()) == json.loads(
            run(command, "--json", db=database).stdout
        ) or command in ("scan", "verify", "check")  # they carry timings and samples
    scan_cases = junit_cases(tmp_path / "out.xml")  # check's, the last written
    assert {"signup_kind[email]", "signup_kind[phone]"} <= set(scan_cases)
    ghosts = run("scan", "--format", "github", db=database)
    assert ghosts.stdout.startswith("::error title=ghostguard Every auth user has a profile::")


def test_hostile_names_cannot_forge_an_annotation_or_break_the_xml(
    database: Database, admin: psycopg.Connection, tmp_path: Path
) -> None:
    """A trigger name is text anyone with CREATE can choose: it reaches the message of an
    annotation and of a JUnit failure, and must stay inside them."""
    evil = 'x\n::error file=/etc/passwd,line=1::pwned]]></failure><x a="'
    name = psycopg.sql.Identifier(evil)
    admin.execute(
        psycopg.sql.SQL(
            "CREATE FUNCTION public.{}() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO users (id) VALUES (NEW.id); RETURN NEW; END $$"
        ).format(name)
    )
    admin.execute(
        psycopg.sql.SQL(
            "CREATE TRIGGER {} AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION public.{}()"
        ).format(name, name)
    )
    result = run(
        "doctor", "--format", "github", "--report", f"junit={tmp_path / 'd.xml'}", db=database
    )
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith(("::error ", "::warning ")) for line in lines)
    assert not any("::error file=/etc/passwd" in line.split("::", 2)[1] for line in lines)
    assert any("%0A::error file=/etc/passwd" in line for line in lines), result.stdout
    cases = junit_cases(tmp_path / "d.xml")  # parses: the name stayed text
    forged = "::error file=/etc/passwd,line=1::pwned]]></failure><x a="
    assert any(forged in (case.result[0].message or "") for case in cases.values() if case.result)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--json", "--format", "sarif"), "--json and --format sarif disagree"),
        (("--report", "sarif"), "'sarif' is not FORMAT=FILE"),
        (("--report", "yaml=out.yaml"), "'yaml=out.yaml' is not FORMAT=FILE"),
        (("--format", "xml"), "'xml' is not one of"),
        (("--report", "sarif=no/such/dir/x.sarif"), "the folder no/such/dir does not exist"),
    ],
)
def test_bad_format_options_are_one_line_usage_errors(
    database: Database, args: tuple[str, ...], says: str
) -> None:
    result = run("doctor", *args, db=database)
    assert result.exit_code == 2
    assert says in result.output and "Traceback" not in result.output
