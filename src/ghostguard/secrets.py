"""Keep passwords in connection strings out of every message, log line and report."""

from __future__ import annotations

import re

_URL_PASSWORD = re.compile(
    r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^@\s]*)(?P<tail>@)", re.I
)
_KEYWORD_PASSWORD = re.compile(
    r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|\S+)", re.I
)


def mask(text: str) -> str:
    """Replace anything that looks like a password in a URL or keyword conninfo with ***."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}***{m['tail']}", text)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m['head']}***", text)
