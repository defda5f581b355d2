"""`ghostguard rehearse`: a project's migration folder replayed into the sandbox the way the
Supabase CLI applies it, then every signup kind judged with the triggers the migrations left."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from conftest import run
from ghostguard.rehearsal import DATABASE
from ghostguard.sandbox import Sandbox
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer

PROFILES = """
create table public.profiles (
  id uuid not null references auth.users on delete cascade primary key,
  full_name text,
  avatar_url text
);
comment on table public.profiles is 'Profils des utilisateurs — un par compte';
alter table public.profiles enable row level security;
grant select, update on public.profiles to authenticated;
create policy "Users can view their own profile." on public.profiles
  for select to authenticated using ((select auth.uid()) = id);

create function public.handle_new_user()
returns trigger language plpgsql security definer set search_path = '' as $$
begin
  insert into public.profiles (id, full_name, avatar_url)
  values (new.id, new.raw_user_meta_data ->> 'full_name', new.raw_user_meta_data ->> 'avatar_url');
  return new;
end;
$$;
create trigger on_auth_user_created after insert on auth.users
  for each row execute procedure public.handle_new_user();
"""
PLATFORM = """
insert into storage.buckets (id, name, public) values ('avatars', 'avatars', true);
create policy "Avatar images are publicly accessible." on storage.objects
  for select using (bucket_id = 'avatars');
create policy "Users upload their own avatar." on storage.objects
  for insert to authenticated
  with check (bucket_id = 'avatars' and (storage.foldername(name))[1] = (select auth.uid())::text);
create extension if not exists pg_trgm with schema extensions;
create index profiles_name_trgm on public.profiles using gin (full_name extensions.gin_trgm_ops);
alter publication supabase_realtime add table public.profiles;
select auth.jwt() ->> 'role', auth.role();
"""


def _folder(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "supabase" / "migrations"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / f"{name}.sql").write_text(text)
    return folder


def _rehearse_args(sandbox: Sandbox, folder: Path) -> list[str]:
    return ["--migrations", str(folder), "--data-dir", str(sandbox.server.home)]


def _rehearse(sandbox: Sandbox, folder: Path, *extra: str) -> tuple[int, dict[str, object]]:
    result = run("rehearse", *_rehearse_args(sandbox, folder), "--json", *extra)
    report = json.loads(result.stdout)  # a JSON document on every exit code
    return result.exit_code, {
        **report,
        "stderr": result.stderr,
    } if result.exit_code == 2 else report


def _one_line_error(sandbox: Sandbox, folder: Path) -> str:
    """A rehearsal that stops at a file: exit 2 and its one line on stderr."""
    result = run("rehearse", "--migrations", str(folder), "--data-dir", str(sandbox.server.home))
    assert result.exit_code == 2, result.output
    return result.stderr


def test_a_folder_that_creates_the_profile_table_and_trigger_passes(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _folder(
        tmp_path, **{"20240101000000_profiles": PROFILES, "20240102000000_platform": PLATFORM}
    )
    code, report = _rehearse(sandbox, folder)
    assert code == 0, report
    assert report["migrations"] == ["20240101000000_profiles", "20240102000000_platform"]
    assert report["profile_table"] == "public.profiles"
    assert report["triggers"] == [
        {
            "name": "on_auth_user_created",
            "function": "public.handle_new_user()",
            "writes_profiles": True,
        }
    ]
    assert report["failing"] == [] and report["passed"] is True
    assert {k["outcome"] for k in report["kinds"]} == {"profile"}  # type: ignore[union-attr]
    with_history = run(
        "sandbox", "url", "--data-dir", str(sandbox.server.home), "--database", DATABASE
    )

    with psycopg.connect(with_history.stdout.strip(), autocommit=True) as conn:
        versions = conn.execute(
            "SELECT version, name FROM supabase_migrations.schema_migrations ORDER BY 1"
        ).fetchall()
    assert versions == [("20240101000000", "profiles"), ("20240102000000", "platform")]

    human = run("rehearse", "--migrations", str(folder), "--data-dir", str(sandbox.server.home))
    assert human.exit_code == 0
    assert (
        "trigger on_auth_user_created on auth.users: calls public.handle_new_user(), writes the profile table"
        in human.stdout
    )
    assert "every kind of signup ends with a profile" in human.stdout


def test_a_later_migration_that_drops_the_trigger_fails_naming_it(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _folder(
        tmp_path,
        **{
            "20240101000000_profiles": PROFILES,
            "20240301000000_refactor": "drop function public.handle_new_user() cascade;",
        },
    )
    code, report = _rehearse(sandbox, folder)
    assert code == 1
    assert report["dropped"] == [
        {
            "trigger": "on_auth_user_created",
            "by": "20240301000000_refactor.sql",
            "file": "supabase/migrations/20240301000000_refactor.sql",
            "line": 1,  # DROP FUNCTION ... CASCADE took the trigger with it
        }
    ]
    assert report["triggers"] == []
    assert "email" in report["failing"]  # type: ignore[operator]


def test_a_not_null_column_without_default_fails_the_kinds_it_breaks(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _folder(
        tmp_path,
        **{
            "20240101000000_profiles": PROFILES,
            "20240401000000_usernames": "alter table public.profiles add column username text not null;",
        },
    )
    code, report = _rehearse(sandbox, folder)
    assert code == 1
    details = {k["kind"]: k["detail"] for k in report["kinds"]}  # type: ignore[union-attr]
    assert 'null value in column "username"' in details["email"]
    assert report["failing"] == [k["kind"] for k in report["kinds"]]  # type: ignore[union-attr]
    assert [e["ok"] for e in report["lifecycle"]] == [None, None]  # type: ignore[union-attr]


def test_a_broken_file_is_one_line_with_the_file_and_the_statement(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _folder(
        tmp_path,
        **{
            "20240101000000_profiles": PROFILES,
            "20240501000000_things": "create table public.ok (id int);\n"
            "create table public.things (id int,, name text);",
        },
    )
    stderr = _one_line_error(sandbox, folder)
    assert stderr == (
        "error: 20240501000000_things.sql:2: 'create table public.things (id int,, name text)': "
        'syntax error at or near ","\n'
    )
    missing = run(
        "rehearse",
        "--migrations",
        str(tmp_path / "nowhere"),
        "--data-dir",
        str(sandbox.server.home),
    )
    assert missing.exit_code == 2
    assert "migrations directory" in missing.stderr and "not found" in missing.stderr


TABLE_ONLY = PROFILES.split("create function")[0]
CONFIG = """
[target]
table = "profiles"
soft_delete_column = ""

[mapping.full_name]
metadata = ["full_name", "name"]

[mapping.avatar_url]
metadata = ["avatar_url", "picture"]
"""


def test_with_ghostguards_own_migrations_in_the_folder_the_rehearsal_passes(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, **{"20240101000000_profiles": TABLE_ONLY})
    config = tmp_path / "ghostguard.toml"
    config.write_text(CONFIG)
    written = run("migrations", "--offline", "--config", str(config), "--dir", str(folder))
    assert written.exit_code == 0, written.output
    code, report = _rehearse(sandbox, folder, "--config", str(config))
    assert code == 0, report
    assert len(report["migrations"]) == 3  # type: ignore[arg-type]
    assert report["triggers"][0]["writes_profiles"] is True  # type: ignore[index]
    assert report["app_view"].startswith("2 of 2 sampled users can read their own profile")  # type: ignore[union-attr]
    assert report["adoption"] == []


def test_the_apps_own_trigger_shows_what_adoption_would_change(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, **{"20240101000000_profiles": PROFILES})
    code, report = _rehearse(sandbox, folder)
    assert code == 0, report
    adoption: list[str] = report["adoption"]  # type: ignore[assignment]
    assert adoption[0].startswith(
        "adopting trigger on_auth_user_created (public.handle_new_user()): it writes public.profiles"
    )
    assert any(
        line.startswith("profiles.full_name <- raw_user_meta_data->>'full_name'")
        for line in adoption
    )


def test_a_folder_that_relies_on_a_table_made_elsewhere_says_so_in_one_line(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Folders from dashboard-first projects start by writing to tables no migration creates."""
    statement = (
        "insert into public.profiles (id, email) values (gen_random_uuid(), 'a@example.com')"
    )
    folder = _folder(tmp_path, **{"20250905232512_seed_admins": statement + ";"})
    stderr = _one_line_error(sandbox, folder)
    assert stderr == (
        f'error: 20250905232512_seed_admins.sql:1: {statement!r}: relation "public.profiles" does '
        "not exist; not in the sandbox: an object created outside these migrations (in the "
        "dashboard, or by a hosted service the sandbox does not reproduce)\n"
    )


def test_an_extension_this_server_lacks_is_named_with_the_way_out(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _folder(
        tmp_path,
        **{"20240101000000_ext": '-- helpers\ncreate extension if not exists "no_such_ext";\n'},
    )
    stderr = _one_line_error(sandbox, folder)
    assert stderr.startswith(
        "error: 20240101000000_ext.sql:2: 'create extension if not exists \"no_such_ext\"': "
    )
    assert stderr.endswith(
        "; this PostgreSQL was built without it: rehearse with --pg-bin of a server that has it "
        "(e.g. $(pg_config --bindir))\n"
    )


def test_a_files_own_begin_and_commit_run_in_the_files_one_transaction(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Dumps and hand-written files carry BEGIN/COMMIT; the CLI's batch takes them as no-ops."""
    folder = _folder(
        tmp_path,
        **{
            "20240101000000_profiles": f"BEGIN;\n{PROFILES}\nCOMMIT;\n",
            "20240102000000_more": "start transaction;\n"
            "alter table public.profiles add column bio text;\nend;",
        },
    )
    code, report = _rehearse(sandbox, folder)
    assert code == 0, report
    assert report["passed"] is True
    url = run("sandbox", "url", "--data-dir", str(sandbox.server.home), "--database", DATABASE)
    with psycopg.connect(url.stdout.strip(), autocommit=True) as conn:
        assert conn.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'profiles' AND column_name = 'bio'"
        ).fetchone() == (1,)
    broken = _folder(
        tmp_path / "broken",
        **{
            "20240101000000_half": "begin;\ncreate table public.half (id int);\nselect 1/0;\ncommit;"
        },
    )
    assert _one_line_error(sandbox, broken) == (
        "error: 20240101000000_half.sql:3: 'select 1/0': division by zero\n"
    )
    with psycopg.connect(url.stdout.strip(), autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('public.half')").fetchone() == (None,)


LOGINS = """
create table public.logins (user_id uuid not null, device text not null);
create function public.log_sign_in() returns trigger language plpgsql security definer
set search_path = '' as $$
begin
  insert into public.logins (user_id, device) values (new.id, new.raw_app_meta_data ->> 'device');
  return new;
end;
$$;
create trigger on_auth_user_signed_in after update of last_sign_in_at on auth.users
  for each row execute function public.log_sign_in();
"""


def test_a_sign_in_trigger_that_fails_fails_the_rehearsal(sandbox: Sandbox, tmp_path: Path) -> None:
    """Every sign-in updates last_sign_in_at: an app trigger on it that fails blocks sign-ins,
    which no signup shows."""
    folder = _folder(
        tmp_path, **{"20240101000000_profiles": PROFILES, "20240601000000_logins": LOGINS}
    )
    code, report = _rehearse(sandbox, folder)
    assert code == 1, report
    assert {k["outcome"] for k in report["kinds"]} == {"profile"}  # type: ignore[union-attr]
    assert report["failing"] == ["sign_in"]
    sign_in, delete = report["lifecycle"]  # type: ignore[misc]
    assert sign_in["event"] == "sign_in" and sign_in["ok"] is False
    assert sign_in["detail"].startswith(
        'the Auth server\'s write failed: null value in column "device"'
    )
    assert delete == {"event": "delete", "ok": True, "detail": ""}  # ON DELETE CASCADE
    accepted = run(
        "rehearse",
        "--migrations",
        str(folder),
        "--data-dir",
        str(sandbox.server.home),
        "--accept-failing",
        "sign_in",
    )
    assert accepted.exit_code == 0, accepted.output
    assert "sign_in: FAILS (the Auth server's write failed: null value" in accepted.stdout
    assert "delete: ok" in accepted.stdout


def test_a_profile_key_without_on_delete_cascade_blocks_deleting_users(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """ "Database error deleting user": the profile's foreign key without ON DELETE CASCADE."""
    no_cascade = PROFILES.replace("on delete cascade ", "")
    folder = _folder(tmp_path, **{"20240101000000_profiles": no_cascade})
    code, report = _rehearse(sandbox, folder)
    assert code == 1, report
    assert report["failing"] == ["delete"]
    delete = report["lifecycle"][1]  # type: ignore[index]
    assert delete["ok"] is False
    assert 'violates foreign key constraint "profiles_id_fkey"' in delete["detail"]
    unlinked = _folder(
        tmp_path / "unlinked",
        **{
            "20240101000000_profiles": PROFILES.replace(
                "references auth.users on delete cascade ", ""
            )
        },
    )
    code, report = _rehearse(sandbox, unlinked)
    assert code == 0, report
    assert report["lifecycle"][1] == {  # type: ignore[index]
        "event": "delete",
        "ok": True,
        "detail": "the profile stays, linked to no user (its foreign key has no ON DELETE CASCADE)",
    }


# A shape seen in public projects: an identity table keyed by the auth id, a profile table keyed
# by the identity's id, and one trigger writing both, its email UNIQUE NOT NULL with the user's id
# as text when there is no email.
IDENTITY_AND_PROFILE = """
create table public.users (
  id uuid primary key references auth.users (id) on delete cascade,
  email text not null unique
);
create table public.profiles (
  user_id uuid primary key references public.users (id) on delete cascade,
  display_name varchar(80)
);
create function public.handle_new_auth_user() returns trigger language plpgsql
security definer set search_path = '' as $$
begin
  insert into public.users (id, email) values (new.id, coalesce(new.email, new.id::text));
  insert into public.profiles (user_id, display_name)
  values (new.id, new.raw_user_meta_data ->> 'display_name');
  return new;
end;
$$;
create trigger on_auth_user_created after insert on auth.users
  for each row execute function public.handle_new_auth_user();
"""


def test_an_identity_table_whose_unique_email_blocks_sso_users_sharing_an_address(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The email falls back to the id (varchar and uuid: init's proposal must not fail on the
    types), and the second account with one address (SSO beside a password signup) fails its
    signup on the UNIQUE email: the rehearsal names it."""
    folder = _folder(tmp_path, **{"20260710000001_identity": IDENTITY_AND_PROFILE})
    code, report = _rehearse(sandbox, folder)
    assert code == 1, report
    assert report["profile_table"] == "public.users"
    assert report["failing"] == ["sso_shared_email", "app_view"]  # no grants: written before 2026
    sso = next(k for k in report["kinds"] if k["kind"] == "sso_shared_email")  # type: ignore[union-attr]
    assert sso["outcome"] == "signup failed"
    assert 'unique constraint "users_email_key"' in sso["detail"]
    adoption: list[str] = report["adoption"]  # type: ignore[assignment]
    assert (
        "users.email <- email, then id (from on_auth_user_created: coalesce(new.email, new.id::text))"
        in adoption
    )
    assert any("also writes public.profiles" in line for line in adoption)


def test_a_row_for_a_user_made_in_the_dashboard_says_what_a_fresh_reset_would_do(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Seen in public folders: a migration inserting the admin's profile by a fixed id, for a
    user who exists only in the hosted project."""
    statement = (
        "insert into public.profiles (id, full_name) "
        "values ('c09d022b-b00e-4b1a-a475-9d3869560b79', 'Адміністратор')"
    )
    folder = _folder(
        tmp_path,
        **{"20240101000000_profiles": PROFILES, "20240102000000_admin": statement + ";"},
    )
    stderr = _one_line_error(sandbox, folder)
    assert stderr.startswith(
        'error: 20240102000000_admin.sql:1: "insert into public.profiles (id, full_name) values '
    )
    assert stderr.endswith(
        'violates foreign key constraint "profiles_id_fkey"; the row needs one no migration '
        "creates (a user made in the dashboard?): a fresh `supabase db reset` fails here too; "
        "move such rows to the seed, after what they need\n"
    )


# Seen in public folders: the role a user picks at signup, cast from user metadata into a NOT
# NULL enum with no default, and an email NOT NULL that phone, anonymous and Apple users lack.
ROLE_AT_SIGNUP = """
create type public.user_role as enum ('teacher', 'student');
create table public.profiles (
  id uuid primary key default gen_random_uuid(),
  user_id uuid references auth.users (id) on delete cascade not null unique,
  email text not null,
  full_name text not null,
  role public.user_role not null
);
create function public.handle_new_user() returns trigger language plpgsql
security definer set search_path = public as $$
begin
  insert into public.profiles (user_id, email, full_name, role)
  values (new.id, new.email,
          coalesce(new.raw_user_meta_data ->> 'full_name', split_part(new.email, '@', 1)),
          coalesce((new.raw_user_meta_data ->> 'role')::user_role, 'student'));
  return new;
end;
$$;
create trigger on_auth_user_created after insert on auth.users
  for each row execute function public.handle_new_user();
"""


def test_a_role_chosen_at_signup_is_a_decision_and_the_app_trigger_is_still_judged(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """ghostguard will not carry a privilege from user metadata over, so its own proposal needs a
    decision; the app's trigger is judged as it is all the same: every signup without an email
    fails with the NOT NULL email."""
    folder = _folder(tmp_path, **{"20251212114137_classes": ROLE_AT_SIGNUP})
    code, report = _rehearse(sandbox, folder)
    assert code == 1, report
    assert report["failing"] == ["phone", "anonymous", "apple", "anonymous_conversion", "app_view"]
    details = {k["kind"]: k["detail"] for k in report["kinds"]}  # type: ignore[union-attr]
    assert 'null value in column "email" of relation "profiles"' in details["phone"]
    assert report["proposal"] == (
        "ghostguard's proposal needs a decision: public.profiles.role is NOT NULL with no "
        "default and no mapping: add it under [mapping] or give it a default"
    )
    adoption: list[str] = report["adoption"]  # type: ignore[assignment]
    assert any(
        line.startswith("TO DECIDE: profiles.role: the original reads it from raw_user_meta_data")
        for line in adoption
    )


def test_profiles_new_users_cannot_read_fail_the_rehearsal_with_the_grant_to_add(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Under the 2026 defaults a new public table is granted to nobody: every user gets a
    profile and the app reads none of them. Two users sign up (rolled back) and read their own
    row as the Data API runs it. A project made before 2026 rehearses with --legacy-grants."""
    no_grant = PROFILES.replace("grant select, update on public.profiles to authenticated;\n", "")
    folder = _folder(tmp_path, **{"20240101000000_profiles": no_grant})
    code, report = _rehearse(sandbox, folder)
    assert code == 1, report
    assert report["failing"] == ["app_view"]
    assert {k["outcome"] for k in report["kinds"]} == {"profile"}  # type: ignore[union-attr]
    assert report["app_view"].startswith(  # type: ignore[union-attr]
        "0 of 2 sampled users can read their own profile"
    )
    # the own-row policy is there: only the grant is missing
    assert report["app_view_fix"] == 'GRANT SELECT ON "public"."profiles" TO authenticated;'
    code, report = _rehearse(sandbox, folder, "--accept-failing", "app_view")
    assert code == 0, report
    code, report = _rehearse(sandbox, folder, "--legacy-grants")
    assert code == 0, report
    assert report["app_view"].startswith("2 of 2 sampled users can read their own profile")  # type: ignore[union-attr]


# Seen in public folders: a push sent through pg_net from a trigger, a nightly job with pg_cron,
# and a database webhook as `supabase db pull` writes it.
SERVICES = """
create extension if not exists pg_net with schema extensions;
create extension if not exists pg_cron with schema pg_catalog;
grant usage on schema cron to postgres;
create function public.notify_signup() returns trigger language plpgsql
security definer set search_path = '' as $$
begin
  perform net.http_post(url := 'https://push.invalid/send',
                        body := jsonb_build_object('user', new.id));
  return new;
end;
$$;
create trigger on_profile_created after insert on public.profiles
  for each row execute function public.notify_signup();
select cron.schedule('purge-old-rows', '0 3 * * *', $$delete from public.profiles where false$$);
create trigger profile_webhook after update on public.profiles for each row
  execute function supabase_functions.http_request(
    'https://hooks.invalid/profile', 'POST', '{"Content-Type":"application/json"}', '{}', '5000');
"""


def test_pg_net_pg_cron_and_webhooks_replay_on_the_embedded_server(
    sandbox: Sandbox, tmp_path: Path, pg_major: int
) -> None:
    """Hosted projects offer pg_net and pg_cron; the embedded 18 has stand-ins (requests queued,
    jobs recorded, nothing sent or run). Debian's 15 has neither: the one-line error says where
    the folder does replay."""
    folder = _folder(
        tmp_path,
        **{"20240101000000_profiles": PROFILES, "20240601000000_services": SERVICES},
    )
    code, report = _rehearse(sandbox, folder)
    if pg_major < 18:
        assert code == 2
        assert report["stderr"] == (  # type: ignore[comparison-overlap]
            "error: 20240601000000_services.sql:2: 'create extension if not exists pg_net with "
            'schema extensions\': extension "pg_net" is not available; this server has no '
            "stand-in for it (PostgreSQL 18 and later do): rehearse on the embedded server, "
            "without --pg-bin\n"
        )
        return
    assert code == 0, report
    assert {k["outcome"] for k in report["kinds"]} == {"profile"}  # type: ignore[union-attr]
    url = run("sandbox", "url", "--data-dir", str(sandbox.server.home), "--database", DATABASE)
    with psycopg.connect(url.stdout.strip(), autocommit=True) as conn:
        assert conn.execute("SELECT jobname, schedule FROM cron.job").fetchall() == [
            ("purge-old-rows", "0 3 * * *")
        ]
        # every signup was rolled back, and with it every request it queued
        assert conn.execute("SELECT count(*) FROM net.http_request_queue").fetchone() == (0,)
        with conn.transaction(force_rollback=True):
            AuthServer(conn).signup(authserver.email_user("net@x.invalid", full_name="Net"))
            queued = conn.execute("SELECT method, url FROM net.http_request_queue").fetchall()
            conn.execute("UPDATE public.profiles SET full_name = 'Renamed'")
            hooks = conn.execute("SELECT hook_name FROM supabase_functions.hooks").fetchall()
        comments = conn.execute(
            "SELECT extname, obj_description(oid, 'pg_extension') FROM pg_extension "
            "WHERE extname IN ('pg_net', 'pg_cron') ORDER BY 1"
        ).fetchall()
    assert queued == [("POST", "https://push.invalid/send")]
    assert hooks == [("profile_webhook",)]
    assert [c[0] for c in comments] == ["pg_cron", "pg_net"]
    assert all("ghostguard stand-in" in str(c[1]) for c in comments)


def test_changing_storage_tables_fails_as_on_hosted_projects_while_policies_replay(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Seen in public folders and reported from `supabase db push`: `alter table storage.objects
    enable row level security` before the policies. Hosted projects let postgres write policies on
    storage's tables and refuse everything else ("must be owner of table objects")."""
    policies = PLATFORM.split("create extension")[0]  # the bucket and its policies
    folder = _folder(
        tmp_path,
        **{
            "20240101000000_profiles": PROFILES,
            "20240102000000_storage": policies,
            "20240103000000_rls": "alter table storage.objects enable row level security;",
        },
    )
    assert _one_line_error(sandbox, folder) == (
        "error: 20240103000000_rls.sql:1: 'alter table storage.objects enable row level security': "
        "must be owner of table objects; hosted projects refuse it too: the table belongs to "
        "Supabase (postgres may create and drop triggers and policies on it and nothing else; "
        "RLS is already on)\n"
    )
    index = _folder(
        tmp_path / "index",
        **{"20240101000000_index": "create index objects_by_name on storage.objects (name);"},
    )
    assert "must be owner of table objects;" in _one_line_error(sandbox, index)


SEED = """
-- a test user, the way seed files in public projects make one (and a password through pgcrypto)
insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
  raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
values ('00000000-0000-0000-0000-000000000000', 'a5c1d0e2-0000-4000-8000-000000000001',
  'authenticated', 'authenticated', 'seed@example.com', crypt('password123', gen_salt('bf')), now(),
  '{"provider": "email", "providers": ["email"]}', '{"full_name": "Seed Person"}', now(), now());
"""


def test_the_seed_runs_after_the_migrations_and_its_users_get_profiles(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, **{"20240101000000_profiles": PROFILES})
    seed = tmp_path / "supabase" / "seed.sql"
    seed.write_text(SEED)
    code, report = _rehearse(sandbox, folder, "--seed", str(seed))
    assert code == 0, report
    assert report["seeded"] is True
    url = run("sandbox", "url", "--data-dir", str(sandbox.server.home), "--database", DATABASE)
    with psycopg.connect(url.stdout.strip(), autocommit=True) as conn:
        assert conn.execute("SELECT id::text, full_name FROM public.profiles").fetchall() == [
            ("a5c1d0e2-0000-4000-8000-000000000001", "Seed Person")
        ]
        stored = conn.execute("SELECT encrypted_password FROM auth.users").fetchone()
        assert stored is not None and str(stored[0]).startswith("$2a$06$")
    seed.write_text(SEED.replace("'seed@example.com'", "'seed@example.com', 'one too many'"))
    result = run(
        "rehearse",
        "--migrations",
        str(folder),
        "--seed",
        str(seed),
        "--data-dir",
        str(sandbox.server.home),
    )
    assert result.exit_code == 2
    # the line its first word is on, after the comment above it
    assert result.stderr.startswith("error: seed.sql:3: 'insert into auth.users (instance_id, id,")
    assert "INSERT has more expressions than target columns" in result.stderr
    gone = run(
        "rehearse",
        "--migrations",
        str(folder),
        "--seed",
        str(tmp_path / "nope.sql"),
        "--data-dir",
        str(sandbox.server.home),
    )
    assert gone.exit_code == 2
    assert gone.stderr == f"error: seed file {tmp_path / 'nope.sql'} not found\n"
