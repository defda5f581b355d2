"""GitHub Actions workflow commands (`::error file=…,line=…,title=…::message`): each failed check
becomes an annotation, on the pull request's diff when it has a file and line."""

from __future__ import annotations

from ghostguard.formats.outcome import ERROR, Outcome
from ghostguard.formats.rules import rule


def _data(text: str) -> str:
    """The message part, escaped as the runner reads it (a newline would end the command)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_commands(outcomes: list[Outcome]) -> str:
    lines: list[str] = []
    for o in outcomes:
        if o.passed:
            continue
        where = (
            [f"file={_property(o.location.path)}", f"line={o.location.line}"] if o.location else []
        )
        title = f"ghostguard {rule(o.rule).title}" + (f" ({o.case})" if o.case else "")
        fields = ",".join([*where, f"title={_property(title)}"])
        message = o.said + (f" Fix: {o.fix}" if o.fix else "")
        lines.append(f"::{'error' if o.level == ERROR else 'warning'} {fields}::{_data(message)}")
    return "".join(line + "\n" for line in lines)
