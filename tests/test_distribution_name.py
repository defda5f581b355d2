"""The name people install is ours: pyproject's distribution name is the one every install line of
the README uses, and never the bare `ghostguard`, which on PyPI is an unrelated project."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALL = re.compile(r"\b(?:pipx install|uv tool install|pip install)\s+([A-Za-z0-9_.\-\[\]']+)")


def test_the_readme_installs_pyprojects_name_and_never_the_strangers() -> None:
    name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    assert name != "ghostguard"
    targets = INSTALL.findall((ROOT / "README.md").read_text())
    published = [t for t in targets if not t.startswith(("-", ".", "'", "pipx", "uv", "build"))]
    assert published, "the README shows how to install the published package"
    assert set(published) == {name}, published


LINK = re.compile(r"\]\(([^)#\s]+)")
PATH = re.compile(r"`((?:docs|src|tests|benchmarks|shared|\.\./shared)/[^`\s*<]+)`")


def test_every_link_in_the_docs_points_into_the_repository() -> None:
    missing: list[str] = []
    for doc in [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text()
        targets = [t for t in LINK.findall(text) if not t.startswith(("http", "mailto:"))]
        for target in [*targets, *PATH.findall(text)]:
            if not (doc.parent / target).exists() and not (ROOT / target).exists():
                missing.append(f"{doc.name}: {target}")
    assert missing == []
