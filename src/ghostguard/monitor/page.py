"""The status page and its JSON twin, both made from one document so they can never disagree.

Plain HTML with inline SVG charts and a meta refresh: no JavaScript, nothing fetched from
elsewhere, readable in any browser and in a terminal browser.
"""

from __future__ import annotations

import html
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from ghostguard.monitor import alerts
from ghostguard.monitor.metrics import enable_timing_command
from ghostguard.monitor.state import Reading, Sample

CHART_POINTS = 288  # 5-minute buckets over 24 hours


def _iso(at: float | None) -> str | None:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds") if at else None


def downsample(samples: list[Sample], points: int = CHART_POINTS) -> list[Sample]:
    """At most `points` samples: the worst ghost and failure counts and the last signup count per
    time bucket, so a short spike still shows."""
    if len(samples) <= points:
        return samples
    first, last = samples[0].at, samples[-1].at
    width = (last - first) / points or 1.0
    buckets: dict[int, list[Sample]] = {}
    for sample in samples:
        buckets.setdefault(min(int((sample.at - first) / width), points - 1), []).append(sample)
    return [
        Sample(
            group[-1].at,
            max((s.ghosts for s in group if s.ghosts is not None), default=None),
            group[-1].signups,
            max((s.failures for s in group if s.failures is not None), default=None),
        )
        for _, group in sorted(buckets.items())
    ]


def _series(samples: list[Sample]) -> dict[str, list[Any]]:
    signups = [
        s.signups - (samples[i - 1].signups if i else s.signups) for i, s in enumerate(samples)
    ]
    return {
        "at": [_iso(s.at) for s in samples],
        "ghosts": [s.ghosts for s in samples],
        "signups": [max(v, 0) for v in signups],
        "failures": [s.failures for s in samples],
    }


def document(reading: Reading, database: str, ghost_threshold: int) -> dict[str, Any]:
    """Everything /status shows, as JSON-ready data (/status.json serves exactly this)."""
    problems = [p for p in alerts.conditions(reading, ghost_threshold).values() if p is not None]
    census, tick = reading.census, reading.tick
    expected = tick.expected_triggers if tick else []
    present = {t.name: t for t in tick.triggers} if tick else {}
    return {
        "database": reading.where,
        "generated_at": _iso(time.time()),
        "monitor_started_at": _iso(reading.started_at),
        "healthy": reading.reachable and not problems and census is not None,
        "problems": problems,
        "database_reachable": reading.reachable,
        "error": reading.error,
        "last_seen": _iso(reading.last_seen),
        "ghosts": None
        if census is None
        else {"total": census.ghost_total, "by_kind": census.ghosts, "at": _iso(census.at)},
        "counts": None if census is None else asdict(census.counts),
        "last_full_reconciliation": None
        if census is None
        else {"at": _iso(census.at), "seconds": round(census.seconds, 3)},
        "sync_failures": None
        if tick is None
        else {"unresolved": tick.failures_unresolved, "last_hour": tick.failures_last_hour},
        "triggers": [
            {
                "name": name,
                "installed": name in present,
                "enabled": name in present and present[name].is_enabled,
            }
            for name in expected
        ],
        "drift": tick.drift if tick else [],
        "function_timing": None
        if tick is None
        else {
            "available": tick.timing.available,
            "track_functions": tick.timing.track_functions,
            "calls": tick.timing.calls,
            "total_ms": tick.timing.total_ms,
            "mean_ms": tick.timing.mean_ms,
            "enable": None if tick.timing.available else enable_timing_command(database),
        },
        "signups_since_start": reading.signups,
        "trigger_probe": None
        if census is None or census.trigger is None
        else {
            "trigger_ms": census.trigger.trigger_ms,
            "detail": census.trigger.detail,
            "at": _iso(census.at),
        },
        "backfill": None
        if tick is None or tick.backfill is None
        else {
            "status": tick.backfill.status,
            "records_affected": tick.backfill.records_affected,
            "started_at": _iso(tick.backfill.started_at),
            "completed_at": _iso(tick.backfill.completed_at),
        },
        "history": _series(downsample(reading.history)),
    }


def _chart(title: str, key: str, values: list[int | None], at: list[str | None]) -> str:
    """An inline SVG line chart; the newest value and the peak are written out as text too."""
    width, height, pad = 640, 120, 4
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    peak = max((v for _, v in known), default=0)
    newest = known[-1][1] if known else None
    span = max(len(values) - 1, 1)
    points = " ".join(
        f"{pad + i * (width - 2 * pad) / span:.1f},"
        f"{height - pad - (v / peak if peak else 0) * (height - 2 * pad):.1f}"
        for i, v in known
    )
    first, last = (at[0] or "", at[-1] or "") if at else ("", "")
    return (
        f'<figure id="chart-{key}"><figcaption>{html.escape(title)}: now '
        f"<b>{newest if newest is not None else '–'}</b>, peak {peak}</figcaption>"
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}"><rect width="{width}" height="{height}" class="bg"/>'
        f'<polyline points="{points}" class="line"/></svg>'
        f'<div class="axis"><span>{html.escape(first)}</span><span>{html.escape(last)}</span>'
        "</div></figure>"
    )


STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:60rem;color:#1b1b1b}
h1{font-size:1.4rem} .ok{color:#0a7d32} .bad{color:#b3261e}
dl{display:grid;grid-template-columns:max-content auto;gap:.3rem 1.2rem}
dt{color:#555} dd{margin:0;font-weight:600} ul.problems li{color:#b3261e}
figure{margin:1rem 0} .bg{fill:#f6f6f6} .line{fill:none;stroke:#3457d5;stroke-width:2}
.axis{display:flex;justify-content:space-between;width:640px;color:#777;font-size:.8rem}
code{background:#f1f1f1;padding:0 .2rem}
"""


def _value(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


def _timing(timing: dict[str, Any]) -> str:
    if not timing:
        return "–"
    if not timing["available"]:
        return (
            f"unavailable: track_functions is {html.escape(timing['track_functions'])}; "
            f"as a superuser run <code>{html.escape(timing['enable'])}</code>"
        )
    if not timing["calls"]:
        return "no calls yet"
    return f"{timing['calls']:,} calls, mean {timing['mean_ms']:.3f} ms"


def render(doc: dict[str, Any], refresh_seconds: int) -> str:
    """The /status page for people."""
    ghosts: dict[str, Any] = doc["ghosts"] or {}
    failures: dict[str, Any] = doc["sync_failures"] or {}
    timing: dict[str, Any] = doc["function_timing"] or {}
    counts: dict[str, Any] = doc["counts"] or {}
    by_kind: dict[str, int] = ghosts.get("by_kind") or {}
    last_full: dict[str, Any] = doc["last_full_reconciliation"] or {}
    rows: list[tuple[str, str, Any]] = [
        (
            "database-state",
            "Database",
            "reachable"
            if doc["database_reachable"]
            else f"unreachable ({doc['error'] or 'no answer yet'})",
        ),
        ("ghosts-total", "Ghost users", ghosts.get("total")),
        (
            "ghosts-by-kind",
            "By kind",
            ", ".join(f"{k} {v:,}" for k, v in by_kind.items() if v) or "none",
        ),
        ("orphans", "Orphan profiles", counts.get("orphan_profiles")),
        ("auth-users", "Auth users", counts.get("auth_users")),
        ("profiles", "Profiles", counts.get("profiles")),
        ("failures-unresolved", "Unresolved sync failures", failures.get("unresolved")),
        ("failures-last-hour", "Sync failures in the last hour", failures.get("last_hour")),
        ("signups", "Signups since the monitor started", doc["signups_since_start"]),
        (
            "triggers",
            "Triggers",
            ", ".join(
                f"{t['name']} {'enabled' if t['enabled'] else 'MISSING' if not t['installed'] else 'DISABLED'}"
                for t in doc["triggers"]
            )
            or "–",
        ),
        (
            "last-full",
            "Last full reconciliation",
            last_full.get("at"),
        ),
        (
            "backfill",
            "Newest backfill",
            (
                f"{doc['backfill']['status']}, {doc['backfill']['records_affected'] or 0:,} profiles "
                f"({doc['backfill']['started_at']})"
                if doc["backfill"]
                else None
            ),
        ),
    ]
    facts = "".join(
        f'<dt>{html.escape(label)}</dt><dd id="{key}">{_value(value)}</dd>'
        for key, label, value in rows
    )
    facts += f'<dt>Sync function timing</dt><dd id="timing">{_timing(timing)}</dd>'
    probe: dict[str, Any] = doc["trigger_probe"] or {}
    facts += (
        '<dt>Sync trigger on a synthetic signup</dt><dd id="trigger-probe">'
        f"{html.escape(str(probe.get('detail') or '–'))}</dd>"
    )
    overall = (
        '<p id="overall" class="ok">All good: no ghosts, no failures, trigger as installed.</p>'
        if doc["healthy"]
        else '<p id="overall" class="bad">Needs attention:</p><ul class="problems">'
        + "".join(f"<li>{html.escape(p)}</li>" for p in doc["problems"])
        + ("<li>no full reconciliation yet</li>" if doc["ghosts"] is None else "")
        + "</ul>"
    )
    history = doc["history"]
    charts = "".join(
        _chart(title, key, history[key], history["at"])
        for title, key in (
            ("Ghost users", "ghosts"),
            ("Signups per interval", "signups"),
            ("Unresolved sync failures", "failures"),
        )
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{refresh_seconds}">'
        f"<title>ghostguard: {html.escape(doc['database'])}</title><style>{STYLE}</style></head>"
        f"<body><h1>ghostguard monitor: {html.escape(doc['database'])}</h1>{overall}"
        f"<dl>{facts}</dl><h2>Last 24 hours</h2>{charts}"
        f'<p class="axis">Generated {doc["generated_at"]}; monitoring since '
        f'{doc["monitor_started_at"]}. <a href="/status.json">JSON</a> · '
        '<a href="/metrics">metrics</a></p></body></html>'
    )
