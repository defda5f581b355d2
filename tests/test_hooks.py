"""Auth hooks in Postgres-function form, run the way the Auth server runs them (as
supabase_auth_admin, one jsonb in and out): the custom access token hook for every new user and
for a ghost, the before-user-created hook before every signup, through rehearse."""

from __future__ import annotations

from pathlib import Path

from test_rehearse import PROFILES, _folder, _rehearse

WITH_ROLE = PROFILES.replace(
    "avatar_url text", "avatar_url text, role text not null default 'member'"
)

# The docs' shape, reading the role from the profile: the claim is null when there is none.
TOKEN_HOOK = """
create function public.custom_access_token_hook(event jsonb) returns jsonb
language plpgsql stable set search_path = '' as $$
declare
  claims jsonb := event -> 'claims';
  user_role text;
begin
  select p.role into user_role from public.profiles p where p.id = (event ->> 'user_id')::uuid;
  claims := jsonb_set(claims, '{user_role}', coalesce(to_jsonb(user_role), 'null'::jsonb));
  return jsonb_set(event, '{claims}', claims);
end $$;
grant usage on schema public to supabase_auth_admin;
grant execute on function public.custom_access_token_hook(jsonb) to supabase_auth_admin;
revoke execute on function public.custom_access_token_hook(jsonb) from authenticated, anon, public;
grant select on public.profiles to supabase_auth_admin;
create policy "auth admin reads roles" on public.profiles for select to supabase_auth_admin
  using (true);
"""
CONFIG = """
[auth.hook.custom_access_token]
enabled = true
uri = "pg-functions://postgres/public/custom_access_token_hook"
"""


def _project(tmp_path: Path, hook_sql: str, config: str = CONFIG) -> Path:
    folder = _folder(
        tmp_path, **{"20240101000000_profiles": WITH_ROLE, "20240102000000_hook": hook_sql}
    )
    (folder.parent / "config.toml").write_text(
        config + "[auth]\nenable_anonymous_sign_ins = true\n"
    )
    return folder


def _tokens(report: dict[str, object]) -> dict[str, list[dict[str, str]]]:
    return {k["kind"]: k["hooks"] for k in report["kinds"]}  # type: ignore[union-attr,index]


def test_the_docs_token_hook_issues_every_token_with_the_role(sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, report = _rehearse(sandbox, _project(tmp_path, TOKEN_HOOK))
    assert code == 0, report
    assert report["hooks"] == [
        {
            "hook": "custom_access_token",
            "uri": "pg-functions://postgres/public/custom_access_token_hook",
            "function": "public.custom_access_token_hook(jsonb)",
            "configured": True,
            "reads": ["public.profiles"],
            "writes": [],
        }
    ]
    tokens = _tokens(report)
    assert tokens["email"] == [
        {"hook": "custom_access_token", "verdict": "ok", "detail": "user_role member"}
    ]
    assert tokens["anonymous"][0]["verdict"] == "ok"
    assert report["ghost_hooks"] == [{"hook": "custom_access_token", "verdict": "ok", "detail": ""}]


def test_a_token_hook_that_fails_for_a_ghost_fails_the_rehearsal(sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    strict = TOKEN_HOOK.replace(
        "  claims := jsonb_set(claims,",
        "  if user_role is null then raise exception 'no profile for %', event ->> 'user_id'; end if;\n"
        "  claims := jsonb_set(claims,",
    )
    code, report = _rehearse(sandbox, _project(tmp_path, strict))
    assert code == 1
    assert report["failing"] == ["ghost_token"]
    ghost = report["ghost_hooks"][0]  # type: ignore[index]
    assert ghost["verdict"] == "error"
    assert ghost["detail"].startswith("Error invoking access token hook: no profile for ")


def test_a_token_hook_without_its_grant_locks_every_user_out(sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ungranted = TOKEN_HOOK.replace("grant select on public.profiles to supabase_auth_admin;\n", "")
    code, report = _rehearse(sandbox, _project(tmp_path, ungranted))
    assert code == 1
    email = _tokens(report)["email"][0]
    assert email["verdict"] == "error"
    assert email["detail"] == (
        "Error invoking access token hook: permission denied for table profiles"
    )
    assert "email" in report["failing"]  # type: ignore[operator]


def test_a_token_hook_that_drops_a_required_claim_is_named(sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dropped = TOKEN_HOOK.replace(
        "  return jsonb_set(event, '{claims}', claims);",
        "  return jsonb_set(event, '{claims}', claims - 'session_id' - 'aal');",
    )
    code, report = _rehearse(sandbox, _project(tmp_path, dropped))
    assert code == 1
    assert _tokens(report)["email"] == [
        {"hook": "custom_access_token", "verdict": "claims missing", "detail": "aal, session_id"}
    ]


BEFORE_HOOK = """
create function public.only_company_emails(event jsonb) returns jsonb
language plpgsql stable set search_path = '' as $$
begin
  if coalesce(event -> 'user' ->> 'email', '') not like '%@check.invalid' then
    return jsonb_build_object('error', jsonb_build_object(
      'http_code', 403, 'message', 'Sign up with your company email'));
  end if;
  return '{}'::jsonb;
end $$;
grant execute on function public.only_company_emails(jsonb) to supabase_auth_admin;
revoke execute on function public.only_company_emails(jsonb) from authenticated, anon, public;
"""
BEFORE_CONFIG = """
[auth.hook.before_user_created]
enabled = true
uri = "pg-functions://postgres/public/only_company_emails"
"""


def test_a_before_user_created_hook_refusing_a_signup_is_no_failure(
    sandbox, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    code, report = _rehearse(sandbox, _project(tmp_path, BEFORE_HOOK, BEFORE_CONFIG))
    outcomes = {k["kind"]: (k["outcome"], k["detail"]) for k in report["kinds"]}  # type: ignore[union-attr,index]
    assert outcomes["email"] == ("profile", "")
    assert outcomes["anonymous"] == (
        "refused by hook",
        "before_user_created: Sign up with your company email",
    )
    assert outcomes["admin_create"] == ("profile", "")  # admin create never calls it
    assert code == 0, report


def test_a_before_user_created_hook_that_breaks_fails_the_signup(sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    broken = BEFORE_HOOK.replace("return '{}'::jsonb;", "return to_jsonb('fine'::text);")
    code, report = _rehearse(sandbox, _project(tmp_path, broken, BEFORE_CONFIG))
    assert code == 1
    email = next(k for k in report["kinds"] if k["kind"] == "email")  # type: ignore[union-attr,index]
    assert email["outcome"] == "signup failed"
    assert email["detail"] == "before_user_created hook: the hook returned str, not a JSON object"


def test_doctor_names_what_a_broken_hook_lacks(sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The grant missing, a name resolved in auth, RLS without a policy for the Auth server's role."""
    broken = (
        TOKEN_HOOK.replace("grant select on public.profiles to supabase_auth_admin;\n", "")
        .replace("from public.profiles p", "from profiles p")
        .replace("set search_path = ''", "")
    )
    code, report = _rehearse(sandbox, _project(tmp_path, broken))
    assert code == 1
    errors = report["doctor_errors"]
    assert any(
        e.startswith("hook_search_path: unqualified profiles resolve in auth")
        for e in errors  # type: ignore[union-attr]
    ), errors
    assert any(
        e == "hook_reads_granted: supabase_auth_admin cannot read: auth.profiles: no such table "
        "(as supabase_auth_admin resolves it)"
        for e in errors  # type: ignore[union-attr]
    ), errors
    no_policy = tmp_path / "rls"
    no_policy.mkdir()
    unpoliced = TOKEN_HOOK.replace(
        'create policy "auth admin reads roles" on public.profiles for select to supabase_auth_admin\n'
        "  using (true);\n",
        "",
    )
    _, report = _rehearse(sandbox, _project(no_policy, unpoliced))
    assert (
        "hook_reads_granted: supabase_auth_admin cannot read: public.profiles: RLS on and no "
        "SELECT policy for supabase_auth_admin" in report["doctor_errors"]  # type: ignore[operator]
    ), report["doctor_errors"]


def test_doctor_finds_hook_functions_in_the_database(database, conn) -> None:  # type: ignore[no-untyped-def]
    from conftest import run

    conn.execute(WITH_ROLE)
    conn.execute(
        TOKEN_HOOK.replace("grant select on public.profiles to supabase_auth_admin;\n", "")
    )
    result = run("doctor", "--json", db=database)
    findings = {
        (f["name"], f["object"]): f for f in __import__("json").loads(result.stdout)["findings"]
    }
    hook = findings[
        ("hook_reads_granted", "custom_access_token hook public.custom_access_token_hook(jsonb)")
    ]
    assert hook["passed"] is False
    assert hook["detail"] == "supabase_auth_admin cannot read: public.profiles: no SELECT"
    assert (
        findings[
            ("hook_execute", "custom_access_token hook public.custom_access_token_hook(jsonb)")
        ]["passed"]
        is True
    )


def test_scan_lists_the_hooks_and_counts_the_ghosts_a_strict_one_locks_out(  # type: ignore[no-untyped-def]
    database, conn, auth
) -> None:
    import json

    from conftest import run
    from ghostguard.supabase import authserver

    conn.execute(WITH_ROLE)
    strict = TOKEN_HOOK.replace(
        "  claims := jsonb_set(claims,",
        "  if user_role is null then raise exception 'no profile'; end if;\n"
        "  claims := jsonb_set(claims,",
    )
    conn.execute(strict)
    ghost = auth.signup(authserver.email_user("ghost@x.invalid", full_name="Ghost"))
    conn.execute("DELETE FROM public.profiles WHERE id = %s", (ghost,))
    (Path(conn.info.dbname + ".toml")).write_text(
        '[target]\nschema = "public"\ntable = "profiles"\n'
        '[mapping]\nfull_name = { metadata = ["full_name"] }\n'
    )
    result = run("scan", "--json", "--config", conn.info.dbname + ".toml", db=database)
    assert result.stdout, result.stderr
    report = json.loads(result.stdout)
    assert report["ghost_total"] == 1
    assert report["hooks"] == [
        {
            "hook": "custom_access_token",
            "function": "public.custom_access_token_hook(jsonb)",
            "reads": ["public.profiles"],
            "writes": [],
            "for_a_ghost": "error: Error invoking access token hook: no profile",
        }
    ]
    assert report["locked_out"] == 1
    doctor = json.loads(
        run("doctor", "--json", "--config", conn.info.dbname + ".toml", db=database).stdout
    )
    lockout = [f for f in doctor["findings"] if f["name"] == "hook_locks_out_ghosts"]
    assert len(lockout) == 1 and lockout[0]["passed"] is False
    assert lockout[0]["detail"] == (
        "fails for users without a profile (error: Error invoking access token hook: no profile):"
        f" they cannot sign in; e.g. {ghost}"
    )


AFTER_HOOK = """
create function public.after_signup(event jsonb) returns jsonb
language plpgsql security definer set search_path = '' as $$
begin
  insert into public.profiles (id, full_name)
  values ((event -> 'user' ->> 'id')::uuid, event -> 'user' -> 'user_metadata' ->> 'full_name')
  on conflict (id) do nothing;
  return '{}'::jsonb;
end $$;
grant execute on function public.after_signup(jsonb) to supabase_auth_admin;
revoke execute on function public.after_signup(jsonb) from authenticated, anon, public;
"""


def test_an_after_user_created_hook_writing_profiles_is_a_ghost_source(
    sandbox, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    config = (
        "[auth.hook.after_user_created]\nenabled = true\n"
        'uri = "pg-functions://postgres/public/after_signup"\n'
    )
    _, report = _rehearse(sandbox, _project(tmp_path, AFTER_HOOK, config))
    assert any(
        e.startswith(
            "hook_after_user_created_writes: writes public.profiles after the signup commits: "
            "admin-created users and some auto-confirmed signups never call it (ghosts)"
        )
        for e in report["doctor_errors"]  # type: ignore[union-attr]
    ), report["doctor_errors"]
    assert (
        "after_user_created hook public.after_signup(jsonb) writes public.profiles after the "
        "commit: make these profiles in the trigger instead, ghostguard.toml [mapping]: "
        'full_name = { metadata = ["full_name"] }' in report["adoption"]  # type: ignore[operator]
    ), report["adoption"]


def test_check_runs_the_databases_token_hook_for_every_kind(database, conn) -> None:  # type: ignore[no-untyped-def]
    import json

    from conftest import run

    conn.execute(
        TOKEN_HOOK.replace("public.profiles p", "public.users p").replace("p.role", "'member'")
        .replace("grant select on public.profiles to supabase_auth_admin;\n", "")
        .replace(
            'create policy "auth admin reads roles" on public.profiles for select to '
            "supabase_auth_admin\n  using (true);\n",
            "",
        )
        .replace(
            "  return jsonb_set(event, '{claims}', claims);",
            "  return jsonb_set(event, '{claims}', claims - 'iss');",
        )
    )  # fmt: skip
    result = run("check", "--json", db=database)
    report = json.loads(result.stdout)
    email = next(k for k in report["kinds"] if k["kind"] == "email")
    assert email["hooks"] == [
        {"hook": "custom_access_token", "verdict": "claims missing", "detail": "iss"}
    ]
    assert email["ok"] is False
    assert report["ghost_hooks"][0]["verdict"] == "claims missing"


def test_a_token_hook_on_a_project_whose_signups_fail_is_not_run_for_a_ghost(  # type: ignore[no-untyped-def]
    sandbox, tmp_path: Path
) -> None:
    failing = TOKEN_HOOK + (
        "create function public.no_signups() returns trigger language plpgsql as\n"
        "$$ begin raise exception 'closed'; end $$;\n"
        "create trigger closed before insert on auth.users for each row\n"
        "  execute function public.no_signups();\n"
    )
    code, report = _rehearse(sandbox, _project(tmp_path, failing))
    assert code == 1
    assert report["ghost_hooks"] == [
        {"hook": "custom_access_token", "verdict": "not run", "detail": "no signup succeeds"}
    ]
    assert "ghost_token" not in report["failing"]  # type: ignore[operator]


def test_a_hostile_hook_uri_reaches_no_sql(sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A config.toml uri names a function; the name goes to the catalog as a parameter and to the
    call as an identifier: text in it changes nothing."""
    hostile = (
        "[auth.hook.custom_access_token]\nenabled = true\n"
        'uri = "pg-functions://postgres/public/x\'); DROP TABLE public.profiles; --"\n'
    )
    code, report = _rehearse(sandbox, _project(tmp_path, "select 1;", hostile))
    assert code == 1
    email = _tokens(report)["email"][0]
    assert email["verdict"] == "error"
    assert email["detail"].endswith("is not a function this database has")
    assert report["profile_table"] == "public.profiles"
