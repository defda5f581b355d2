"""What each check is about, for the formats that describe their rules once (SARIF's rules,
splinter's description and categories): a title and a sentence saying why it matters."""

from __future__ import annotations

from dataclasses import dataclass

SECURITY, RELIABILITY, PERFORMANCE = "SECURITY", "RELIABILITY", "PERFORMANCE"


@dataclass(frozen=True)
class Rule:
    title: str
    help: str
    category: str = RELIABILITY


RULES: dict[str, Rule] = {
    # A user's profile: the ghosts themselves
    "no_ghosts": Rule(
        "Every auth user has a profile",
        "A user who can sign in but has no profile row is a ghost: the app treats them as nobody.",
    ),
    "counts_match": Rule(
        "User counts match",
        "auth users and profiles should be as many (the guide's check 2).",
    ),
    "sync_failures": Rule(
        "No unresolved sync failures",
        "A profile write the trigger recorded as failed leaves that user a ghost until repaired.",
    ),
    "backfill_logged": Rule(
        "Backfill recorded in the audit log",
        "The backfill's audit row says how many profiles it made and whether it finished.",
    ),
    "registration_probe": Rule(
        "A new signup gets a profile",
        "A signup the Auth server's way, rolled back, must end with a profile row.",
    ),
    "signup_kinds": Rule(
        "Every signup kind gets a profile",
        "Each kind of signup the project has (email, phone, OAuth, SSO, anonymous...) must end "
        "with a profile.",
    ),
    "signup_kind": Rule(
        "This kind of signup gets a profile",
        "A signup of this kind, the Auth server's way, rolled back, must end with a profile the "
        "user can use; a NOT NULL column or a CHECK the Auth data cannot fill makes a ghost.",
    ),
    "lifecycle": Rule(
        "Sign-in and delete work after signup",
        "A user who signed up must be able to sign in again and be deleted.",
    ),
    "app_view": Rule(
        "Users can read their own profile",
        "Through the Data API a signed-in user must see their own profile row (RLS and grants).",
        SECURITY,
    ),
    "app_view_anon": Rule(
        "Anonymous callers cannot read profiles", "anon must not read profiles.", SECURITY
    ),
    "app_view_others": Rule(
        "Users cannot read others' profiles",
        "A signed-in user must not read other users' profile rows.",
        SECURITY,
    ),
    # ghostguard's own sync
    "sync_installed": Rule(
        "The sync is installed", "The sync trigger and function ghostguard installs exist."
    ),
    "trigger_installed": Rule(
        "Sync trigger installed and enabled",
        "Without the trigger enabled, every new signup is a ghost.",
    ),
    "function_exists": Rule("Sync function exists", "The trigger calls it on every signup."),
    "function_definer": Rule(
        "Sync function is SECURITY DEFINER",
        "It must write the profile table whatever role the Auth server signs up as.",
        SECURITY,
    ),
    "function_secure": Rule(
        "Sync function is locked down",
        "SECURITY DEFINER, search_path pinned, not callable by API roles.",
        SECURITY,
    ),
    "search_path_pinned": Rule(
        "search_path pinned",
        "A SECURITY DEFINER function without a pinned search_path runs objects a caller chose.",
        SECURITY,
    ),
    "definer_owner": Rule(
        "Sync function owned by postgres",
        "Its owner's rights are what it runs with; an API role must not own it.",
        SECURITY,
    ),
    "execute_revoked": Rule(
        "EXECUTE revoked from API roles",
        "anon and authenticated must not call a SECURITY DEFINER function through the Data API.",
        SECURITY,
    ),
    "audit_table_closed": Rule(
        "Audit table closed to API roles", "The audit log holds user ids.", SECURITY
    ),
    "failures_table_closed": Rule(
        "Failures table closed to API roles", "The failures table holds user ids.", SECURITY
    ),
    "profile_rls": Rule(
        "Profile table has RLS with own-row policies",
        "Without RLS, every user can read every profile through the Data API.",
        SECURITY,
    ),
    "no_drift": Rule(
        "Installed sync is what apply installs",
        "A function or trigger changed by hand may no longer make profiles.",
    ),
    "as_recorded": Rule(
        "Sync unchanged since apply", "What apply recorded must still be what is installed."
    ),
    "no_duplicate_callers": Rule(
        "One trigger calls the sync", "Two triggers calling it sync every row twice."
    ),
    # any trigger on the auth table
    "trigger_definer": Rule(
        "Auth trigger is SECURITY DEFINER",
        "A SECURITY INVOKER trigger runs as the Auth server's role, which cannot write app "
        "tables: every signup fails.",
        SECURITY,
    ),
    "trigger_search_path": Rule(
        "Auth trigger pins search_path",
        "The Auth server's search_path is not the app's: unqualified names fail or resolve to "
        "the wrong object.",
        SECURITY,
    ),
    "trigger_qualified_names": Rule(
        "Auth trigger qualifies every name",
        "With search_path pinned to '', an unqualified name fails every signup.",
    ),
    "trigger_records_exceptions": Rule(
        "Auth trigger records its failures",
        "An exception swallowed without a record makes a silent ghost.",
    ),
    "trigger_skips_sign_ins": Rule(
        "UPDATE trigger skips sign-ins",
        "The Auth server updates the user on every sign-in; a trigger that works each time "
        "slows and can break sign-in.",
        PERFORMANCE,
    ),
    "one_profile_writer": Rule(
        "One trigger writes profiles", "Two profile writers race and fail each other's inserts."
    ),
    "trigger_privilege_from_user_metadata": Rule(
        "No privilege from user metadata",
        "raw_user_meta_data is written by the user at signup: a role or flag taken from it is "
        "a privilege anyone can grant themselves.",
        SECURITY,
    ),
    "app_trigger_signups": Rule(
        "The app's trigger makes a profile for every kind",
        "The app's own trigger, run for each signup kind, must end with a profile.",
    ),
    "trigger_dropped": Rule(
        "No migration drops the profile trigger",
        "A later migration dropped the trigger that made profiles: every signup after it is a ghost.",
    ),
    # the profile table
    "nullable_sources": Rule(
        "NOT NULL columns have a value for every signup",
        "A NOT NULL column mapped from data some signups lack (phone users have no email) fails "
        "those signups.",
    ),
    "unique_email": Rule(
        "UNIQUE email allows SSO users",
        "SSO and OAuth users can share an email with an existing user; a UNIQUE email fails them.",
    ),
    "checks_on_mapped": Rule(
        "CHECKs hold for mapped values", "A CHECK the Auth data cannot satisfy fails the signup."
    ),
    "link_unique": Rule(
        "Link column is unique", "ON CONFLICT needs a unique index on the column linking users."
    ),
    "profile_key_uuid": Rule("Profile key is uuid", "auth.users.id is uuid; the link must be too."),
    "deletes_cascade": Rule(
        "Foreign keys let users be deleted",
        "A foreign key to auth.users without ON DELETE CASCADE makes deleting that user fail.",
    ),
    "no_exposed_auth_views": Rule(
        "No view exposes auth.users",
        "A view over auth.users that API roles can read leaks every user's email.",
        SECURITY,
    ),
    # auth hooks
    "auth_hook": Rule(
        "Auth hook function is sound", "The function an auth hook calls must exist and return."
    ),
    "hook_search_path": Rule(
        "Hook pins search_path",
        "A hook runs as supabase_auth_admin with its search_path.",
        SECURITY,
    ),
    "hook_execute": Rule(
        "Hook callable by the Auth server only",
        "supabase_auth_admin must have EXECUTE; API roles must not.",
        SECURITY,
    ),
    "hook_reads_granted": Rule(
        "Hook can read what it reads",
        "supabase_auth_admin needs SELECT (and a policy) on the tables the hook reads.",
    ),
    "hook_updates_user": Rule(
        "Hook does not update auth.users",
        "A hook that updates the user it is called for deadlocks.",
    ),
    "hook_claim_from_user_metadata": Rule(
        "No claim from user metadata",
        "A token claim taken from raw_user_meta_data is a privilege the user grants themselves.",
        SECURITY,
    ),
    "hook_after_user_created_writes": Rule(
        "after-user-created hook does not make profiles",
        "It runs after the commit over HTTP; a profile made there is lost when it fails.",
    ),
    "hook_locks_out_ghosts": Rule(
        "Token hook works for a user without a profile",
        "A custom access token hook that fails for a ghost keeps them from signing in.",
    ),
    # rehearse
    "migration_replays": Rule(
        "Migrations replay",
        "Every migration must apply in order, as `supabase db push` applies it.",
    ),
    "profile_table_found": Rule(
        "A profile table is found", "The migrations must leave a table the signups fill."
    ),
}


def rule(name: str) -> Rule:
    """The rule of a check; a check added later without an entry is described by its name."""
    return RULES.get(name) or Rule(name.replace("_", " ").capitalize(), name.replace("_", " "))
