"""Supabase's advisors (splinter) row shape, so ghostguard's findings sit next to
`supabase db advisors` output: name, title, level, facing, categories, description, detail,
remediation, metadata, cache_key; one row per failed check."""

from __future__ import annotations

import re
from typing import Any

from ghostguard.formats.outcome import ERROR, Outcome
from ghostguard.formats.rules import rule


def rows(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for o in outcomes:
        if o.passed:
            continue
        described = rule(o.rule)
        schema, _, name = o.object.rpartition(".") if "." in o.object else ("", "", o.object)
        metadata: dict[str, Any] = {"schema": schema, "name": name, "case": o.case}
        if o.location is not None:
            metadata |= {"file": o.location.path, "line": o.location.line}
        found.append(
            {
                "name": o.rule,
                "title": described.title,
                "level": "ERROR" if o.level == ERROR else "WARN",
                "facing": "EXTERNAL",
                "categories": [described.category],
                "description": described.help,
                "detail": o.message,
                "remediation": o.fix,
                "metadata": metadata,
                "cache_key": "_".join(
                    part for part in (o.rule, _key(o.object), _key(o.case)) if part
                ),
            }
        )
    return found


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
