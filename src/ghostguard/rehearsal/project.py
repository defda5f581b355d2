"""The project's own `supabase/config.toml`: which signup kinds it enables, whether email
confirmation is on, and its auth hooks. A kind the file enables is always judged; one it leaves
off is listed as disabled. Without the file every kind is judged."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ghostguard import kinds
from ghostguard.errors import ConfigError
from ghostguard.kinds import SignupKind


@dataclass(frozen=True)
class Hook:
    name: str  # custom_access_token, before_user_created, ...
    uri: str


@dataclass(frozen=True)
class Project:
    path: Path | None
    settings: dict[str, Any] = field(default_factory=dict[str, Any])

    @property
    def read(self) -> bool:
        return self.path is not None

    def setting(self, dotted: str, default: bool) -> bool:
        node: object = self.settings
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = cast(dict[str, object], node)[part]
        return node if isinstance(node, bool) else default

    def _table(self, *path: str) -> dict[str, object]:
        node: object = self.settings
        for part in path:
            node = cast(dict[str, object], node).get(part, {}) if isinstance(node, dict) else {}
        return cast(dict[str, object], node) if isinstance(node, dict) else {}

    def enabled(self, kind: SignupKind) -> bool:
        if not self.read:
            return True
        if kind.outside_config:  # config.toml cannot say: judged with --every-kind
            return False
        return all(self.setting(name, default) for name, default in kind.settings())

    def providers(self) -> list[str]:
        """OAuth providers the file enables, in its order."""
        external = self._table("auth", "external")
        return [
            name
            for name, provider in external.items()
            if isinstance(provider, dict)
            and cast(dict[str, object], provider).get("enabled") is True
        ]

    def judged(self) -> tuple[list[SignupKind], list[str]]:
        """(the kinds to run, the names of those the file disables): every kind of the one list
        it enables, and every provider it enables that the list lacks."""
        run = [k for k in kinds.SIGNUP_KINDS if self.enabled(k)]
        off = [k.name for k in kinds.SIGNUP_KINDS if not self.enabled(k)]
        if self.read and self.setting(*kinds.SIGNUP):
            run += [kinds.oauth(p) for p in self.providers() if p not in kinds.BY_NAME]
        return run, off

    @property
    def email_confirmations(self) -> bool | None:
        """Whether email signups wait for confirmation (None: no config.toml)."""
        return self.setting("auth.email.enable_confirmations", False) if self.read else None

    def hooks(self) -> list[Hook]:
        found = self._table("auth", "hook")
        hooks = {n: cast(dict[str, object], h) for n, h in found.items() if isinstance(h, dict)}
        return [
            Hook(name, str(hook.get("uri", "")))
            for name, hook in hooks.items()
            if hook.get("enabled") is True
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "config_toml": str(self.path) if self.path else None,
            "email_confirmations": self.email_confirmations,
            "hooks": [{"hook": h.name, "uri": h.uri} for h in self.hooks()],
        }


def beside(migrations: Path) -> Path | None:
    """`supabase/config.toml` for `supabase/migrations`, when there is one."""
    candidate = migrations.parent / "config.toml"
    return candidate if candidate.is_file() else None


def load(path: Path | None) -> Project:
    if path is None:
        return Project(None)
    try:
        return Project(path, tomllib.loads(path.read_text(encoding="utf-8")))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path} cannot be read as TOML: {exc}; fix it, or pass --every-kind to rehearse without it"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror}") from None
