"""The GitHub Action (action.yml): its steps' commands run the way a runner runs a composite
action's `run` steps (bash -e -o pipefail, GITHUB_ACTION_PATH, GITHUB_OUTPUT, RUNNER_TEMP, the
step's env with `${{ inputs.* }}` filled in), since no runner is available here. The install
step itself runs in `.ci/run` (`.ci/action-steps`), against the clone."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest
import yaml

from conftest import Database, make_ghosts
from ghostguard.sandbox import Sandbox
from ghostguard.supabase.authserver import AuthServer
from test_formats import SCHEMA
from test_rehearse import PROFILES, _folder

ROOT = Path(__file__).resolve().parent.parent
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


def _step(step_id_or_name: str) -> dict[str, Any]:
    return next(
        s for s in ACTION["runs"]["steps"] if step_id_or_name in (s.get("id"), s.get("name"))
    )


def _evaluate(text: str, inputs: dict[str, str], outputs: dict[str, str]) -> str:
    """`${{ inputs.x }}` and `${{ steps.ghostguard.outputs.y }}`, as the runner fills them."""

    def value(match: re.Match[str]) -> str:
        expression = match[1]
        if expression.startswith("inputs."):
            name = expression.removeprefix("inputs.")
            return inputs.get(name, str(ACTION["inputs"][name].get("default", "")))
        if expression.startswith("steps.ghostguard.outputs."):
            return outputs.get(expression.removeprefix("steps.ghostguard.outputs."), "")
        raise AssertionError(f"the test does not evaluate {expression}")

    return EXPRESSION.sub(value, text)


def run_step(
    name: str,
    workspace: Path,
    runner_temp: Path,
    inputs: dict[str, str],
    outputs: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """One `run` step as a runner runs it; returns the process and the outputs it set."""
    step = _step(name)
    assert step["shell"] == "bash"
    output_file = runner_temp / f"output-{name.replace(' ', '_')}"
    output_file.write_text("")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_ACTION_PATH": str(ROOT),
        "GITHUB_OUTPUT": str(output_file),
        "GITHUB_PATH": str(runner_temp / "path"),
        "RUNNER_TEMP": str(runner_temp),
        "CI": "true",
        "GITHUB_ACTIONS": "true",
    }
    env |= {k: _evaluate(str(v), inputs, outputs or {}) for k, v in step.get("env", {}).items()}
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )
    said = dict(line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line)
    return done, said


def test_the_action_is_a_composite_that_installs_its_own_version() -> None:
    assert ACTION["runs"]["using"] == "composite"
    assert set(ACTION["inputs"]) >= {
        "migrations",
        "seed",
        "accept-failing",
        "format",
        "upload-sarif",
    }
    assert set(ACTION["outputs"]) >= {"passed", "failing", "exit-code", "sarif"}
    install = _step("Install ghostguard (this action's version)")
    assert "$GITHUB_ACTION_PATH" in install["run"]
    assert '/bin/pip" install' in (ROOT / "action" / "install.sh").read_text()
    assert '"${GITHUB_ACTION_PATH:?}"' in (ROOT / "action" / "install.sh").read_text()
    uses = [s["uses"] for s in ACTION["runs"]["steps"] if "uses" in s]
    assert uses == ["actions/setup-python@v5", "github/codeql-action/upload-sarif@v3"]
    upload = _step("Upload SARIF to code scanning")
    assert "inputs.upload-sarif == 'true'" in upload["if"] and "always()" in upload["if"]


@pytest.fixture
def runner(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GHOSTGUARD_HOME", str(sandbox.server.home))  # the suite's sandbox
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    return temp


def test_a_failing_rehearsal_annotates_sets_outputs_and_fails_the_job(
    runner: Path, tmp_path: Path
) -> None:
    _folder(
        tmp_path,
        **{
            "20240101000000_profiles": PROFILES,
            "20240201000000_username": "alter table public.profiles\n  add column username text not null;\n",
        },
    )
    done, outputs = run_step("Run ghostguard", tmp_path, runner, {"accept-failing": "phone"})
    assert done.returncode == 0, done.stderr  # the job fails in the last step, after the upload
    assert "::error file=supabase/migrations/20240201000000_username.sql,line=1," in done.stdout, (
        done.stdout
    )
    assert outputs["passed"] == "false" and outputs["exit-code"] == "1"
    assert "email" in outputs["failing"].split(",") and "phone" not in outputs["failing"]
    sarif = json.loads(Path(outputs["sarif"]).read_text())
    jsonschema.Draft4Validator(SCHEMA).validate(sarif)
    last, _ = run_step("Exit with ghostguard's exit code", tmp_path, runner, {}, outputs)
    assert last.returncode == 1


def test_a_passing_rehearsal_passes_the_job(runner: Path, tmp_path: Path) -> None:
    _folder(tmp_path, **{"20240101000000_profiles": PROFILES})
    done, outputs = run_step("Run ghostguard", tmp_path, runner, {"format": "text"})
    assert done.returncode == 0, done.stderr
    assert "every kind of signup ends with a profile" in done.stdout
    assert outputs == {
        "passed": "true",
        "failing": "",
        "exit-code": "0",
        "sarif": str(runner / "ghostguard" / "result.sarif"),
    }
    last, _ = run_step("Exit with ghostguard's exit code", tmp_path, runner, {}, outputs)
    assert last.returncode == 0


def test_scan_without_a_database_url_and_an_unknown_command_fail_with_an_annotation(
    runner: Path, tmp_path: Path
) -> None:
    done, outputs = run_step("Run ghostguard", tmp_path, runner, {"command": "scan"})
    assert done.stdout.startswith("::error title=ghostguard::scan needs the database-url input")
    assert outputs["exit-code"] == "2"
    hostile = "x\n::error file=/etc/passwd::pwned"
    done, outputs = run_step("Run ghostguard", tmp_path, runner, {"command": hostile})
    assert (
        done.stdout.count("\n") == 1
        and "::error file=/etc/passwd" not in done.stdout.split("::", 2)[1]
    )
    last, _ = run_step("Exit with ghostguard's exit code", tmp_path, runner, {}, outputs)
    assert last.returncode == 2


def test_a_scheduled_scan_reports_ghosts_and_uploads_only_with_a_config_to_anchor_on(
    runner: Path, tmp_path: Path, database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    make_ghosts(auth, conn)
    inputs = {"command": "scan", "database-url": database.url}
    done, outputs = run_step("Run ghostguard", tmp_path, runner, inputs)
    assert done.returncode == 0, done.stderr
    assert "::error title=ghostguard Every auth user has a profile::" in done.stdout
    assert outputs["passed"] == "false" and outputs["exit-code"] == "1"
    assert outputs["failing"] == "ghosts,drift"  # every condition that holds (sync not installed)
    assert outputs["sarif"] == "" and "::notice title=ghostguard::no SARIF upload" in done.stdout
    assert database.url not in done.stdout + done.stderr  # the secret never reaches the log
    (tmp_path / "ghostguard.toml").write_text("")
    done, outputs = run_step("Run ghostguard", tmp_path, runner, inputs)
    sarif = json.loads(Path(outputs["sarif"]).read_text())
    jsonschema.Draft4Validator(SCHEMA).validate(sarif)
    assert {"ghostguard.toml"} == {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in sarif["runs"][0]["results"]
    }
