"""One exception base with specific subclasses; the CLI maps each to a documented exit code."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit-code contract every command honours (documented in the README)."""

    OK = 0
    CHECKS_FAILED = 1  # ghosts found, a verification check failed
    ERROR = 2  # bad input, bad config, unreachable server, unexpected database error
    REFUSED = 3  # unsafe or unconfirmed: nothing was changed
    INTERRUPTED = 130  # Ctrl-C (SIGINT): what was done is kept and said; run again to resume
    TERMINATED = 143  # SIGTERM: the same


class GhostguardError(Exception):
    """Base for every error ghostguard reports to a user; the message is one line and says what to do."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConnectionFailed(GhostguardError):
    """The database URL is invalid or the server cannot be reached."""


class ConfigError(GhostguardError):
    """ghostguard.toml is malformed or does not match the live catalog."""


class SandboxError(GhostguardError):
    """The embedded PostgreSQL could not be started, stopped or set up."""


class DatabaseError(GhostguardError):
    """A statement failed; carries the SQLSTATE so callers can react by class, not by text."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class Refused(GhostguardError):
    """The command would change the database without confirmation, or the change is unsafe."""

    exit_code = ExitCode.REFUSED


class Interrupted(GhostguardError):
    """Stopped by SIGINT or SIGTERM midway: says what was done and how to go on; `result` is
    what --json prints."""

    def __init__(self, message: str, signum: int, result: dict[str, object]) -> None:
        super().__init__(message)
        self.exit_code = ExitCode.TERMINATED if signum == 15 else ExitCode.INTERRUPTED
        self.result = result
