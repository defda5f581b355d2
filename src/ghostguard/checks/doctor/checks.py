"""The doctor's checks, in report order: each reads the facts and returns findings (checks/finding.py).

Three groups: ghostguard's own objects, the pitfalls of any trigger on the auth table, and the
profile table."""

from __future__ import annotations

from collections.abc import Callable

from ghostguard.checks.doctor import auth_hooks, auth_triggers, own_objects, profile_table
from ghostguard.checks.doctor.facts import Facts
from ghostguard.checks.finding import Finding

CHECKS: list[Callable[[Facts], list[Finding]]] = [
    own_objects.sync_installed,
    own_objects.search_path_pinned,
    own_objects.definer_owner,
    own_objects.execute_revoked,
    own_objects.audit_closed,
    own_objects.failures_closed,
    own_objects.profile_rls,
    auth_triggers.trigger_definer,
    auth_triggers.trigger_search_path,
    auth_triggers.trigger_qualified_names,
    auth_triggers.trigger_records_exceptions,
    auth_triggers.trigger_skips_sign_ins,
    auth_triggers.one_profile_writer,
    auth_triggers.trigger_privilege_from_user_metadata,
    auth_triggers.app_trigger_signups,
    profile_table.nullable_sources,
    profile_table.unique_email,
    profile_table.checks_on_mapped,
    profile_table.app_view,
    profile_table.link_unique,
    profile_table.profile_key_uuid,
    profile_table.deletes_cascade,
    profile_table.no_exposed_auth_views,
    auth_hooks.hooks_linted,
    auth_hooks.hooks_lock_out_ghosts,
]
