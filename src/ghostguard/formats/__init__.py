"""What scan, verify, doctor, check and rehearse print for machines: their own JSON, SARIF 2.1.0
(code scanning), GitHub workflow annotations, JUnit XML (CI test reports) and Supabase's
advisors' rows (splinter). Each command turns its report into outcomes (collect.py); each format
writes outcomes."""

from __future__ import annotations

import json
from typing import Any

from ghostguard.formats import github, junit, sarif, splinter
from ghostguard.formats.outcome import Location, Outcome

TEXT, JSON = "text", "json"
FORMATS = (TEXT, JSON, "sarif", "github", "junit", "splinter")

__all__ = ["FORMATS", "JSON", "TEXT", "Location", "Outcome", "as_json", "render"]


def as_json(data: Any) -> str:
    """Every JSON document ghostguard prints: indented, values it cannot encode as text."""
    return json.dumps(data, indent=2, default=str) + "\n"


def render(
    fmt: str,
    command: str,
    data: dict[str, Any],
    outcomes: list[Outcome],
    exit_code: int,
    anchor: Location | None = None,
) -> str:
    """The document `fmt` prints for a command's result (`data`: its --json document)."""
    if fmt == JSON:
        return as_json(data)
    if fmt == "sarif":
        return as_json(sarif.document(command, outcomes, exit_code, anchor))
    if fmt == "github":
        return github.workflow_commands(outcomes)
    if fmt == "junit":
        return junit.document(command, outcomes)
    if fmt == "splinter":
        return as_json(splinter.rows(outcomes))
    raise ValueError(f"{fmt} is not a format; formats: {', '.join(FORMATS)}")
