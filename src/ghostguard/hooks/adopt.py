"""What adopting an after-user-created hook into the trigger would map: the hook's INSERT into the
profile table, read from its parse tree, with the event's fields turned into the auth row's
columns (`event -> 'user' -> 'user_metadata' ->> 'k'` is `raw_user_meta_data ->> 'k'`,
`event -> 'user' ->> 'email'` is `email`). Said as ghostguard.toml [mapping] lines: the trigger
then makes those profiles on every path, the hook's late and repeated calls no longer needed."""

from __future__ import annotations

import re

from ghostguard.adopt.translate import written
from ghostguard.config import Config
from ghostguard.hooks.found import HookFunction

_META = re.compile(r"event\s*->\s*'user'\s*->\s*'user_metadata'\s*->>\s*'([^']+)'", re.I)
_FIELD = re.compile(r"event\s*->\s*'user'\s*->>\s*'([^']+)'", re.I)
USER_FIELDS = {"email": "email", "phone": "phone", "created_at": "created_at"}


def mapping_lines(function: HookFunction, config: Config) -> list[str]:
    """`column = { metadata = ["k"] }` / `column = { column = "email" }` for each profile column
    the hook writes from the event; the key column (the user's id) is the trigger's own."""
    lines: list[str] = []
    mine = (config.target.display, config.target.table)
    for table, column, expression in written(function):
        if table not in mine or column == config.target.key:
            continue
        meta, field = _META.search(expression), _FIELD.search(expression)
        if meta:
            lines.append(f'{column} = {{ metadata = ["{meta[1]}"] }}')
        elif field and field[1] in USER_FIELDS:
            lines.append(f'{column} = {{ column = "{USER_FIELDS[field[1]]}" }}')
    return lines
