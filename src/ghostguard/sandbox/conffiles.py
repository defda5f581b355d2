"""Settings the sandbox owns, each in a file of its own that postgresql.conf includes: rewritten
only when its text changes, so the caller knows when the server must reload or restart."""

from __future__ import annotations

from pathlib import Path


def quoted(value: str) -> str:
    """A postgresql.conf string value."""
    return "'" + value.replace("'", "''") + "'"


def write_included(data_dir: Path, name: str, why: str, setting: str) -> bool:
    """`setting` in `data_dir/name`, included (once) from postgresql.conf with a comment saying
    `why`; True when the file's text changed."""
    conf = data_dir / "postgresql.conf"
    include = f"include_if_exists = '{name}'\n"
    if include not in conf.read_text():
        with conf.open("a") as out:
            out.write(f"\n# ghostguard sandbox: {why} (see that file)\n{include}")
    path = data_dir / name
    if path.exists() and path.read_text() == setting:
        return False
    path.write_text(setting)
    return True
