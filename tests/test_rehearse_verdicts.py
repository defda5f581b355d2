"""rehearse's verdicts are the ones reading the SQL gives: the profile table is the one the
project's trigger writes, the trigger that stops a signup is named, a failure that hangs on what
the app sends says so, config.toml decides the kinds, and --json always prints a document."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run
from ghostguard.sandbox import Sandbox
from test_rehearse import PROFILES, _folder, _rehearse

QUOTED_USER_TABLE = """
create table public."user" (id uuid primary key, email text, name text);
alter table public."user" enable row level security;
grant select on public."user" to authenticated;
create policy "own row" on public."user" for select to authenticated using ((select auth.uid()) = id);
create function public.on_signup() returns trigger language plpgsql security definer
set search_path = '' as $$
begin
  insert into public."user" (id, email, name) values (new.id, new.email, new.raw_user_meta_data ->> 'name');
  return new;
end $$;
create trigger on_signup after insert on auth.users for each row execute function public.on_signup();
"""

# A table with a unique link to auth.users that is not the profile table (the app's Telegram
# accounts), created before the real profile table that the trigger writes.
LINK_TABLE_FIRST = """
create table public.telegram_links (
  user_id uuid primary key references auth.users on delete cascade,
  chat_id bigint not null
);
""" + PROFILES.replace("references auth.users on delete cascade", "")

INVITE_GATE = """
create table public.invites (email text primary key);
create function public.only_invited() returns trigger language plpgsql security definer
set search_path = '' as $$
begin
  if not exists (select 1 from public.invites i where i.email = new.email) then
    return null;  -- not invited: the user is silently not created
  end if;
  return new;
end $$;
create trigger gate_signups before insert on auth.users
  for each row execute function public.only_invited();
"""

NAME_REQUIRED = PROFILES.replace("full_name text,", "full_name text not null,")


def test_a_trigger_writing_a_quoted_table_names_it_as_the_profile_table(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, **{"20240101000000_user": QUOTED_USER_TABLE})
    code, report = _rehearse(sandbox, folder)
    assert report["profile_table"] == "public.user", report
    assert report["problem"] == ""
    assert {k["kind"]: k["outcome"] for k in report["kinds"]}["email"] == "profile"  # type: ignore[index]
    assert code == 0, report


def test_a_linked_table_the_trigger_does_not_write_is_not_the_profile_table(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, **{"20240101000000_tables": LINK_TABLE_FIRST})
    code, report = _rehearse(sandbox, folder)
    assert report["profile_table"] == "public.profiles", report
    assert code == 0, report


def test_a_before_trigger_returning_null_is_named_as_what_stops_the_signup(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _folder(
        tmp_path, **{"20240101000000_profiles": PROFILES, "20240102000000_gate": INVITE_GATE}
    )
    code, report = _rehearse(sandbox, folder)
    assert code == 1
    email = next(k for k in report["kinds"] if k["kind"] == "email")  # type: ignore[union-attr]
    assert email["outcome"] == "signup failed"
    assert email["detail"].startswith(
        "stopped by the BEFORE INSERT trigger gate_signups on auth.users "
        "(public.only_invited()), which returned NULL, so the row was never inserted"
    )
    assert "identities" not in email["detail"]


def test_a_not_null_column_from_user_metadata_hangs_on_what_the_app_sends(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, **{"20240101000000_profiles": NAME_REQUIRED})
    code, report = _rehearse(sandbox, folder)
    assert code == 1
    assert "phone" in report["failing"]  # type: ignore[operator]
    assert any(
        note.startswith("phone: public.profiles.full_name comes from user metadata (full_name)")
        for note in report["metadata"]  # type: ignore[union-attr]
    ), report["metadata"]
    # The app always sends a name with its phone and anonymous signups: said in ghostguard.toml.
    (tmp_path / "ghostguard.toml").write_text(
        '[rehearse.metadata]\nemail = { full_name = "Ada" }\nphone = { full_name = "Ada" }\n'
        'anonymous = { full_name = "Guest" }\n'
    )
    _, given = _rehearse(sandbox, folder, "--config", str(tmp_path / "ghostguard.toml"))
    outcomes = {k["kind"]: k["outcome"] for k in given["kinds"]}  # type: ignore[union-attr]
    assert outcomes["email"] == outcomes["phone"] == outcomes["anonymous"] == "profile"
    assert given["profile_table"] == "public.profiles"
    assert given["sends"]["email"] == {"full_name": "Ada"}  # type: ignore[index]


CONFIG_TOML = """
[auth]
enable_signup = true
enable_anonymous_sign_ins = false
[auth.email]
enable_signup = true
enable_confirmations = true
[auth.sms]
enable_signup = false
[auth.external.google]
enabled = true
client_id = "env(GOOGLE_ID)"
[auth.external.discord]
enabled = true
[auth.external.apple]
enabled = false
[auth.hook.custom_access_token]
enabled = true
uri = "pg-functions://postgres/public/custom_access_token_hook"
"""


IDENTITY_HOOK = """
create function public.custom_access_token_hook(event jsonb) returns jsonb
language sql stable set search_path = '' as $$ select event $$;
grant execute on function public.custom_access_token_hook(jsonb) to supabase_auth_admin;
"""


def test_the_projects_config_toml_decides_the_kinds(sandbox: Sandbox, tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        **{"20240101000000_profiles": PROFILES, "20240102000000_hook": IDENTITY_HOOK},
    )
    (folder.parent / "config.toml").write_text(CONFIG_TOML)
    code, report = _rehearse(sandbox, folder)
    assert code == 0, report
    judged = [k["kind"] for k in report["kinds"]]  # type: ignore[union-attr]
    assert judged == [
        "email", "google", "admin_create", "email_change", "soft_delete", "discord",
    ]  # fmt: skip
    assert report["disabled"] == [
        "phone", "anonymous", "github", "apple", "azure", "sso_shared_email",
        "anonymous_conversion",
    ]  # fmt: skip
    project = report["project"]
    assert project["email_confirmations"] is True  # type: ignore[index]
    assert project["hooks"] == [  # type: ignore[index]
        {
            "hook": "custom_access_token",
            "uri": "pg-functions://postgres/public/custom_access_token_hook",
        }
    ]
    text = run(
        "rehearse", "--migrations", str(folder), "--data-dir", str(sandbox.server.home)
    ).stdout
    assert (
        "disabled in config: phone, anonymous, github, apple, azure, sso_shared_email, "
        "anonymous_conversion" in text
    )
    assert (
        "auth hook custom_access_token: pg-functions://postgres/public/custom_access_token_hook"
        in text
    )
    _, every = _rehearse(sandbox, folder, "--every-kind")
    assert len(every["kinds"]) == 12 and every["disabled"] == []  # type: ignore[arg-type]


def test_a_kind_config_toml_enables_is_never_skipped(sandbox: Sandbox, tmp_path: Path) -> None:
    """Phone enabled in config.toml, and the profile table needs an email: phone fails."""
    strict = PROFILES.replace("full_name text,", "full_name text, email text not null,").replace(
        "insert into public.profiles (id, full_name, avatar_url)\n  values (new.id,",
        "insert into public.profiles (id, email, full_name, avatar_url)\n  values (new.id, new.email,",
    )
    folder = _folder(tmp_path, **{"20240101000000_profiles": strict})
    (folder.parent / "config.toml").write_text("[auth.sms]\nenable_signup = true\n")
    code, report = _rehearse(sandbox, folder)
    assert code == 1
    assert "phone" in report["failing"]  # type: ignore[operator]
    assert "phone" not in report["disabled"]  # type: ignore[operator]


def test_the_docs_recipe_without_ghostguard_is_no_doctor_error(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The Supabase docs' trigger (public.handle_new_user, on_auth_user_created) has ghostguard's
    default names; that it lacks ghostguard's update trigger is no error of the project's."""
    folder = _folder(tmp_path, **{"20240101000000_profiles": PROFILES})
    code, report = _rehearse(sandbox, folder)
    assert report["doctor_errors"] == [], report["doctor_errors"]
    assert code == 0 and report["passed"] is True


def test_a_doctor_error_fails_the_rehearsal(sandbox: Sandbox, tmp_path: Path) -> None:
    staff = (
        PROFILES.replace("avatar_url text", "avatar_url text, is_staff boolean")
        .replace(
            "values (new.id, new.raw_user_meta_data ->> 'full_name',",
            "values (new.id, new.raw_user_meta_data ->> 'full_name',",
        )
        .replace(
            "insert into public.profiles (id, full_name, avatar_url)\n  values (new.id, "
            "new.raw_user_meta_data ->> 'full_name', new.raw_user_meta_data ->> 'avatar_url');",
            "insert into public.profiles (id, full_name, avatar_url, is_staff)\n  values (new.id, "
            "new.raw_user_meta_data ->> 'full_name', new.raw_user_meta_data ->> 'avatar_url', "
            "(new.raw_user_meta_data ->> 'is_staff')::boolean);",
        )
    )
    folder = _folder(tmp_path, **{"20240101000000_profiles": staff})
    code, report = _rehearse(sandbox, folder)
    assert report["failing"] == []
    assert any(
        e.startswith("trigger_privilege_from_user_metadata")
        for e in report["doctor_errors"]  # type: ignore[union-attr]
    ), report["doctor_errors"]
    assert report["passed"] is False and code == 1


def test_json_on_a_failed_replay_names_file_line_statement_and_error(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _folder(
        tmp_path,
        **{
            "20240101000000_profiles": PROFILES,
            "20240102000000_bad": "\n\nselect 1;\nselect 1/0;\n",
        },
    )
    result = run(
        "rehearse", "--migrations", str(folder), "--data-dir", str(sandbox.server.home), "--json"
    )
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["passed"] is False
    assert document["error"] == {
        "message": "20240102000000_bad.sql:4: 'select 1/0': division by zero",
        "file": "20240102000000_bad.sql",
        "path": "supabase/migrations/20240102000000_bad.sql",
        "line": 4,
        "statement": "select 1/0",
        "error": "division by zero",
        "sqlstate": "22012",
        "meaning": "",
    }
    assert result.stderr == "error: 20240102000000_bad.sql:4: 'select 1/0': division by zero\n"


def test_a_file_that_is_not_utf8_is_one_line_and_json(sandbox: Sandbox, tmp_path: Path) -> None:
    folder = _folder(tmp_path, **{"20240101000000_profiles": PROFILES})
    (folder / "20240102000000_latin1.sql").write_bytes(b"-- caf\xe9\nselect 1;\n")
    result = run(
        "rehearse", "--migrations", str(folder), "--data-dir", str(sandbox.server.home), "--json"
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "error: 20240102000000_latin1.sql is not UTF-8 (byte 0xe9 on line 1): save it as UTF-8, "
        "as the Supabase CLI expects\n"
    )
    assert json.loads(result.stdout)["error"]["message"].startswith("20240102000000_latin1.sql")


def test_two_files_with_one_version_are_named(sandbox: Sandbox, tmp_path: Path) -> None:
    folder = _folder(
        tmp_path, **{"20240101000000_profiles": PROFILES, "20240101000000_again": "select 1;"}
    )
    result = run("rehearse", "--migrations", str(folder), "--data-dir", str(sandbox.server.home))
    assert result.exit_code == 2
    assert result.stderr == (
        "error: 20240101000000_again.sql and 20240101000000_profiles.sql have the same version "
        "20240101000000: the Supabase CLI records one file per version; rename one with a later "
        "timestamp\n"
    )


def test_postgis_gets_one_line_with_the_way_out(sandbox: Sandbox, tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        **{"20240101000000_gis": "create extension if not exists postgis schema extensions;"},
    )
    result = run("rehearse", "--migrations", str(folder), "--data-dir", str(sandbox.server.home))
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "; PostGIS is not in this server and has no stand-in (it is compiled code): rehearse "
        "with --pg-bin of a PostgreSQL that has it installed\n"
    )


CONFIRMED_ONLY = PROFILES.replace(
    "create trigger on_auth_user_created after insert on auth.users\n  for each row",
    "create trigger on_auth_user_created after insert on auth.users\n"
    "  for each row when (new.email_confirmed_at is not null or new.email is null)",
)


def test_with_email_confirmation_on_an_email_signup_is_confirmed_later(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A trigger that makes profiles only for confirmed users leaves every email signup a ghost
    once config.toml turns confirmation on: the row is inserted unconfirmed, confirmed later."""
    assert CONFIRMED_ONLY != PROFILES
    folder = _folder(tmp_path, **{"20240101000000_profiles": CONFIRMED_ONLY})
    (folder.parent / "config.toml").write_text("[auth.email]\nenable_confirmations = false\n")
    code, report = _rehearse(sandbox, folder)
    assert code == 0, report
    (folder.parent / "config.toml").write_text("[auth.email]\nenable_confirmations = true\n")
    code, report = _rehearse(sandbox, folder)
    assert code == 1
    outcomes = {k["kind"]: k["outcome"] for k in report["kinds"]}  # type: ignore[union-attr]
    assert outcomes["email"] == "no profile"
    assert outcomes["admin_create"] == "profile"  # an admin creates users confirmed
    assert report["project"]["email_confirmations"] is True  # type: ignore[index]


def test_every_input_problem_is_one_line_and_a_json_document(tmp_path: Path) -> None:
    folder = _folder(tmp_path, **{"20240101000000_profiles": PROFILES})
    for args, message in (
        (["--pg-bin", str(tmp_path / "nowhere")], "--pg-bin "),
        (["--seed", str(tmp_path / "seed.sql")], "seed file "),
        (["--supabase-config", str(tmp_path / "config.toml")], "config.toml cannot be read"),
    ):
        if args[0] == "--supabase-config":
            (tmp_path / "config.toml").write_text("[auth\n")
        result = run(
            "rehearse", "--migrations", str(folder), "--data-dir", str(tmp_path / "box"),
            "--json", *args,
        )  # fmt: skip
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert message in result.stderr
        document = json.loads(result.stdout)
        assert document["passed"] is False and message in document["error"]["message"]
    assert not (tmp_path / "box").exists()  # nothing started for a bad input
