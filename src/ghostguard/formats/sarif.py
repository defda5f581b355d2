"""SARIF 2.1.0, as GitHub code scanning reads it: one rule per check (its title, why it matters),
one result per failed check, located in the migration file and line that caused it, otherwise at
the database object (a logical location) and at `anchor`, the file code scanning shows it on."""

from __future__ import annotations

import hashlib
from typing import Any

from ghostguard import __version__
from ghostguard.formats.outcome import ERROR, Location, Outcome
from ghostguard.formats.rules import rule

SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
INFORMATION = "https://pypi.org/project/ghostguard-pg/"


def document(
    command: str, outcomes: list[Outcome], exit_code: int, anchor: Location | None = None
) -> dict[str, Any]:
    rule_ids = list(dict.fromkeys(o.rule for o in outcomes))
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "ghostguard",
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION,
                        "rules": [_rule(r, _fix_of(r, outcomes)) for r in rule_ids],
                    }
                },
                "automationDetails": {"id": f"ghostguard/{command}/"},
                "invocations": [
                    {
                        "executionSuccessful": exit_code in (0, 1),
                        "exitCode": exit_code,
                        "commandLine": f"ghostguard {command}",
                    }
                ],
                "results": [
                    _result(o, rule_ids.index(o.rule), anchor) for o in outcomes if not o.passed
                ],
            }
        ],
    }


def _fix_of(name: str, outcomes: list[Outcome]) -> str:
    """The fix this run found for a rule (its first failing result's), for the rule's help."""
    return next((o.fix for o in outcomes if o.rule == name and not o.passed and o.fix), "")


def _rule(name: str, fix: str) -> dict[str, Any]:
    described = rule(name)
    help_text = described.help + (f"\nFix: {fix}" if fix else "")
    return {
        "id": name,
        "name": "".join(part.capitalize() for part in name.split("_")),
        "shortDescription": {"text": described.title},
        "fullDescription": {"text": described.help},
        "help": {"text": help_text},
        "properties": {"tags": [described.category.lower()]},
    }


def _fingerprint(outcome: Outcome) -> str:
    key = "\x1f".join((outcome.rule, outcome.case, outcome.object))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _result(outcome: Outcome, index: int, anchor: Location | None) -> dict[str, Any]:
    text = outcome.message + (f" Fix: {outcome.fix}" if outcome.fix else "")
    location: dict[str, Any] = {}
    where = outcome.location or anchor
    if where is not None:
        location["physicalLocation"] = {
            "artifactLocation": {"uri": where.path},
            "region": {"startLine": where.line},
        }
    if outcome.object:
        location["logicalLocations"] = [{"fullyQualifiedName": outcome.object}]
    result: dict[str, Any] = {
        "ruleId": outcome.rule,
        "ruleIndex": index,
        "level": "error" if outcome.level == ERROR else "warning",
        "message": {"text": text},
        # Stable across runs, and distinct for findings that share a location (every database
        # finding is anchored at the config file's first line): code scanning matches alerts by it.
        "partialFingerprints": {"ghostguardFinding/v1": _fingerprint(outcome)},
        "properties": {"fix": outcome.fix, "case": outcome.case, "group": outcome.group},
    }
    if location:
        result["locations"] = [location]
    return result
