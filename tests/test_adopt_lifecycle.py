"""Adoption keeps all of the original's behaviour: the same signups and the same later changes
(email change, anonymous conversion, phone change, a user-metadata update) through the app's own
triggers and through the adopted sync leave the same profile rows, for an INSERT-only original,
an INSERT trigger with an `AFTER UPDATE OF` trigger beside it, and an upsert on every UPDATE."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from conftest import Database, run
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer

TABLE = """
CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  email text,
  phone text,
  full_name text
);
"""
INSERT_ONLY = """
CREATE FUNCTION public.on_signup() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
  INSERT INTO public.profiles (id, email, phone, full_name)
  VALUES (NEW.id, NEW.email, NEW.phone, NEW.raw_user_meta_data ->> 'full_name');
  RETURN NEW;
END $$;
CREATE TRIGGER on_signup AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION public.on_signup();
"""
UPDATE_OF = (
    INSERT_ONLY
    + """
CREATE FUNCTION public.on_contact_change() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
  UPDATE public.profiles SET email = NEW.email, phone = NEW.phone WHERE id = NEW.id;
  RETURN NEW;
END $$;
CREATE TRIGGER on_contact_change AFTER UPDATE OF email, phone ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.on_contact_change();
"""
)
UPSERT = """
CREATE FUNCTION public.sync_profile() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
  INSERT INTO public.profiles (id, email, phone, full_name)
  VALUES (NEW.id, NEW.email, NEW.phone, NEW.raw_user_meta_data ->> 'full_name')
  ON CONFLICT (id) DO UPDATE SET email = excluded.email, phone = excluded.phone,
                                 full_name = excluded.full_name;
  RETURN NEW;
END $$;
CREATE TRIGGER sync_profile AFTER INSERT OR UPDATE ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.sync_profile();
"""
ORIGINALS = {"INSERT only": INSERT_ONLY, "UPDATE OF": UPDATE_OF, "upsert on every UPDATE": UPSERT}


def _lifecycle(auth: AuthServer, ids: dict[str, uuid.UUID] | None) -> dict[str, uuid.UUID]:
    """Sign up three users (reusing `ids` the second time), then change each of them."""
    users = {
        "email": authserver.email_user("kim@example.com", full_name="Kim"),
        "anonymous": authserver.anonymous_user(),
        "phone": authserver.phone_user("15550003333"),
    }
    if ids is not None:
        for kind, user in users.items():
            user.id = ids[kind]
    made = {kind: auth.signup(user) for kind, user in users.items()}
    auth.confirm_email_change(made["email"], "kim@new.example")
    auth.update_user_metadata(made["email"], {"full_name": "Kim Renamed"})
    auth.convert_anonymous(made["anonymous"], "was-anon@example.com")
    auth.confirm_phone_change(made["phone"], "15550004444")
    return made


def _rows(conn: psycopg.Connection) -> set[tuple[object, ...]]:
    return set(conn.execute("SELECT id, email, phone, full_name FROM public.profiles").fetchall())


@pytest.mark.parametrize("original", ORIGINALS.values(), ids=list(ORIGINALS))
def test_adopted_sync_leaves_the_same_rows_through_the_lifecycle(
    database: Database, auth: AuthServer, conn: psycopg.Connection, original: str
) -> None:
    conn.execute(TABLE + original)
    ids = _lifecycle(auth, None)
    by_original = _rows(conn)
    assert len(by_original) == 3
    auth.conn.execute("DELETE FROM auth.users")  # the profiles go with them (cascade)
    init = run("init", db=database)
    assert init.exit_code == 0, init.output
    applied = run("apply", "--yes", db=database)
    assert applied.exit_code == 0, applied.output
    _lifecycle(auth, ids)
    assert _rows(conn) == by_original
