"""/status in a real headless Chromium (Debian's `chromium`): a screenshot kept as an artifact and
the key numbers read back from the rendered page.

Marked `browser`: the README's test command (a fresh machine with only Python) leaves it out;
.ci/run installs Chromium and runs `pytest -m browser`. It fails, never skips, when Chromium is
missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from conftest import Database
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer
from monitoring import running_monitor, wait_for

ARTIFACTS = Path(__file__).parent / "artifacts"
pytestmark = pytest.mark.browser


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "headless Chromium is needed: apt-get install chromium (what .ci/run does)"
    return found


def headless(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_status_page_renders_in_chromium(database: Database, conn: psycopg.Connection) -> None:
    with psycopg.connect(database.auth_url, autocommit=True) as c:
        writer = AuthServer(c)
        writer.signup(authserver.email_user("early@example.com"))  # before the trigger: a ghost
        writer.signup(authserver.phone_user("15550002222"))  # a phone ghost
    with running_monitor(database.url, interval=0.2, full_every=0.5) as mon:
        doc = wait_for(mon.status, lambda d: d["ghosts"] is not None and d["ghosts"]["total"] == 2)
        wait_for(mon.status, lambda d: len(d["history"]["at"]) >= 5)
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "status.png"
        shot.unlink(missing_ok=True)
        taken = headless(f"--screenshot={shot}", "--window-size=1100,1400", f"{mon.base}/status")
        assert shot.exists() and shot.stat().st_size > 10_000, taken.stderr[-2000:]
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        dom = headless("--dump-dom", f"{mon.base}/status")
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = dom.stdout

    def field(key: str) -> str:
        match = re.search(rf'<dd id="{key}">(.*?)</dd>', page, re.S)
        assert match, f"{key} not on the rendered page"
        return re.sub(r"<[^>]+>", "", match.group(1))

    assert field("ghosts-total") == "2" == str(doc["ghosts"]["total"])
    assert field("ghosts-by-kind") == "email 1, phone 1"
    assert field("database-state") == "reachable"
    assert field("failures-unresolved") == "–"  # no failures table: ghostguard not installed
    assert "MISSING" in field("triggers")
    assert "Needs attention" in page
    assert page.count("<svg") == 3 and 'id="chart-ghosts"' in page
    assert re.search(r"Ghost users: now <b>2</b>", page)
