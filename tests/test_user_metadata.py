"""User metadata is written by the user: init maps from it only what is plainly profile data,
doctor flags every other column a trigger writes from it, and the escape hatch's guard reads the
parse tree."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import psycopg
import pytest

from conftest import Database, run
from ghostguard import config
from ghostguard.errors import ConfigError
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer

ATTACK = ("is_staff", "credits", "isAdmin", "account_type", "approved", "is_verified")

PROFILES = """
CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  full_name text,
  bio text,
  "fullName" text,
  is_staff boolean NOT NULL DEFAULT false,
  credits integer NOT NULL DEFAULT 0,
  "isAdmin" boolean DEFAULT false,
  account_type text DEFAULT 'free',
  approved boolean,
  is_verified boolean DEFAULT false
);
"""


def test_init_maps_profile_data_and_leaves_every_other_metadata_key_to_the_owner(
    database: Database, conn: psycopg.Connection, auth: AuthServer
) -> None:
    conn.execute(PROFILES)
    meta = {"bio": "hi", "fullName": "Eve", **{k: "true" for k in ATTACK}}
    meta["credits"] = "1000000"
    meta["account_type"] = "enterprise"
    auth.signup(authserver.NewUser(email="eve@example.com", user_metadata=meta))
    result = run("init", db=database)
    assert result.exit_code == 1, result.output
    written = Path("ghostguard.toml").read_text()
    mapping = tomllib.loads(written)["mapping"]
    assert mapping["bio"] == {"metadata": ["bio"]}
    assert mapping["fullName"] == {"metadata": ["fullName"]}
    assert not set(ATTACK) & set(mapping)
    for key in ATTACK:
        assert f"# - public.profiles.{key} (" in written, key
        assert 'from = "raw_app_meta_data"' in written
    assert "every user sets that metadata for themselves" in written


APP_TRIGGER = """
CREATE FUNCTION public.on_signup() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
  INSERT INTO public.profiles (id, full_name, is_staff)
  VALUES (NEW.id, NEW.raw_user_meta_data ->> 'full_name',
          (NEW.RAW_USER_META_DATA ->> 'is_staff')::boolean);
  RETURN NEW;
END $$;
CREATE TRIGGER on_signup AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION public.on_signup();
CREATE FUNCTION public.on_change() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
  UPDATE public.profiles SET credits = (NEW.raw_user_meta_data ->> 'credits')::int WHERE id = NEW.id;
  RETURN NEW;
END $$;
CREATE TRIGGER on_change AFTER UPDATE ON auth.users FOR EACH ROW EXECUTE FUNCTION public.on_change();
"""


def test_doctor_flags_non_profile_columns_from_user_metadata_on_insert_and_update(
    database: Database, conn: psycopg.Connection
) -> None:
    conn.execute(PROFILES + APP_TRIGGER)
    result = run("doctor", "--json", db=database)
    findings = [
        f for f in json.loads(result.stdout)["findings"]
        if f["name"] == "trigger_privilege_from_user_metadata"
    ]  # fmt: skip
    failed = {f["object"]: f["detail"] for f in findings if not f["passed"]}
    assert result.exit_code == 1
    insert = next(d for o, d in failed.items() if "public.on_signup()" in o)
    update = next(d for o, d in failed.items() if "public.on_change()" in o)
    assert insert.startswith("writes public.profiles.is_staff from raw_user_meta_data")
    assert "full_name" not in insert
    assert update.startswith("writes public.profiles.credits from raw_user_meta_data")
    assert all(f["level"] == "error" for f in findings)


@pytest.mark.parametrize(
    "expression",
    [
        "au.RAW_USER_META_DATA ->> 'role'",
        "(au).raw_user_meta_data ->> 'role'",
        "to_jsonb(au) -> 'raw_user_meta_data' ->> 'role'",
        "au.\"raw_user_meta_data\" ->> 'role'",
    ],
)
def test_the_escape_hatch_guard_reads_the_parse_tree(tmp_path: Path, expression: str) -> None:
    path = tmp_path / "ghostguard.toml"
    path.write_text(f"[mapping.role]\nsql = {json.dumps(expression)}\n")
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert "looks like a privilege" in err.value.message


def test_the_escape_hatch_may_read_app_metadata_for_a_privilege(tmp_path: Path) -> None:
    path = tmp_path / "ghostguard.toml"
    path.write_text("[mapping.role]\nsql = \"au.raw_app_meta_data ->> 'role'\"\n")
    assert config.load(path).mapping["role"].expression == "au.raw_app_meta_data ->> 'role'"
