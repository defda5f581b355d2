"""Write auth.users the way Supabase's Auth server (GoTrue) does, for the demo, the tests and verify's probe.

Every operation is one transaction, uses unqualified table names under search_path `auth`, and
follows the order the Auth server uses (INSERT with role '', UPDATE role, identities, audit log),
so triggers see exactly what they would see in production.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

NIL_UUID = uuid.UUID(int=0)
AUTH_ROLE = "supabase_auth_admin"

_USER_COLUMNS = (
    "instance_id",
    "id",
    "aud",
    "role",
    "email",
    "encrypted_password",
    "email_confirmed_at",
    "invited_at",
    "confirmation_token",
    "confirmation_sent_at",
    "recovery_token",
    "recovery_sent_at",
    "email_change_token_new",
    "email_change",
    "email_change_sent_at",
    "last_sign_in_at",
    "raw_app_meta_data",
    "raw_user_meta_data",
    "is_super_admin",
    "created_at",
    "updated_at",
    "phone",
    "phone_confirmed_at",
    "phone_change",
    "phone_change_token",
    "phone_change_sent_at",
    "email_change_token_current",
    "email_change_confirm_status",
    "banned_until",
    "reauthentication_token",
    "reauthentication_sent_at",
    "is_sso_user",
    "deleted_at",
    "is_anonymous",
)
INSERT_USER = (
    'INSERT INTO "users" ('
    + ", ".join(f'"{c}"' for c in _USER_COLUMNS)
    + ") VALUES ("
    + ", ".join(f"%({c})s" for c in _USER_COLUMNS)
    + ")"
)
# Timestamps the Auth server sets on identities; older or hand-made schemas may lack them.
IDENTITY_TIMESTAMPS = ("last_sign_in_at", "created_at", "updated_at")
INSERT_AUDIT = (
    'INSERT INTO "audit_log_entries" ("instance_id", "id", "payload", "created_at", "ip_address") '
    "VALUES (%s, %s, %s, now(), '127.0.0.1')"
)


@dataclass
class NewUser:
    """One signup as the Auth server would receive it."""

    email: str | None = None
    phone: str | None = None
    provider: str = "email"
    user_metadata: dict[str, Any] = field(default_factory=dict[str, Any])
    is_anonymous: bool = False
    is_sso_user: bool = False
    provider_id: str | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    confirmed: bool = True  # False: an email signup waiting for its confirmation link

    def app_metadata(self) -> dict[str, Any]:
        if self.is_anonymous:
            return {"provider": "anonymous", "providers": ["anonymous"]}
        return {"provider": self.provider, "providers": [self.provider]}


def email_user(email: str, **meta: Any) -> NewUser:
    return NewUser(email=email, user_metadata=dict(meta))


def phone_user(phone: str) -> NewUser:
    return NewUser(phone=phone, provider="phone")


def anonymous_user() -> NewUser:
    return NewUser(is_anonymous=True, provider="anonymous")


def google_user(email: str, name: str, picture: str) -> NewUser:
    meta = {
        "iss": "https://accounts.google.com",
        "name": name,
        "picture": picture,
        "email": email,
        "email_verified": True,
    }
    return NewUser(email=email, provider="google", user_metadata=meta, provider_id=_digits(email))


def github_user(email: str, user_name: str, avatar_url: str) -> NewUser:
    meta = {
        "iss": "https://api.github.com",
        "user_name": user_name,
        "preferred_username": user_name,
        "avatar_url": avatar_url,
        "email": email,
    }
    return NewUser(
        email=email, provider="github", user_metadata=meta, provider_id=_digits(user_name)
    )


def apple_user(email: str | None = None) -> NewUser:
    """Apple often sends no name and may hide the email: metadata `{}`."""
    return NewUser(email=email, provider="apple", provider_id=_digits(email or str(uuid.uuid4())))


def sso_user(email: str, sso_provider: str = "acme-okta") -> NewUser:
    """SSO users may share an email with a non-SSO user (the unique index excludes them)."""
    return NewUser(
        email=email,
        provider=f"sso:{sso_provider}",
        is_sso_user=True,
        user_metadata={"email": email, "custom_claims": {}},
        provider_id=f"{sso_provider}:{email}",
    )


def _digits(text: str) -> str:
    return str(int(hashlib.sha256(text.encode()).hexdigest()[:12], 16))


def user_row(user: NewUser, app_metadata: dict[str, Any]) -> dict[str, Any]:
    """The auth.users row the Auth server inserts for a signup (INSERT_USER's parameters)."""
    now = datetime.now(UTC)
    confirmed = None if user.is_anonymous else now
    values: dict[str, Any] = {c: None for c in _USER_COLUMNS}
    values.update(
        instance_id=NIL_UUID,
        id=user.id,
        aud="authenticated",
        role="",
        email=user.email,
        encrypted_password="" if user.provider != "email" else "$2a$10$ghostguard.sandbox.hash",
        email_confirmed_at=confirmed if user.email and user.confirmed else None,
        phone_confirmed_at=confirmed if user.phone else None,
        confirmation_token="" if user.confirmed else uuid.uuid4().hex,
        recovery_token="",
        email_change_token_new="",
        email_change="",
        raw_app_meta_data=Jsonb(app_metadata),
        raw_user_meta_data=Jsonb(user.user_metadata),
        is_super_admin=None,
        created_at=now,
        updated_at=now,
        phone=user.phone,
        phone_change="",
        phone_change_token="",
        email_change_token_current="",
        email_change_confirm_status=0,
        reauthentication_token="",
        is_sso_user=user.is_sso_user,
        is_anonymous=user.is_anonymous,
    )
    return values


def hook_user(user: NewUser) -> dict[str, Any]:
    """The user as the Auth server shows it to a before-user-created hook (not yet inserted)."""
    now = datetime.now(UTC).isoformat()
    return {
        "id": str(user.id), "aud": "authenticated", "role": "", "email": user.email or "",
        "phone": user.phone or "", "app_metadata": user.app_metadata(),
        "user_metadata": user.user_metadata, "identities": [], "created_at": now,
        "updated_at": now, "is_anonymous": user.is_anonymous,
    }  # fmt: skip


class UserNotInserted(Exception):
    """The INSERT into the auth table inserted no row: a BEFORE INSERT trigger returned NULL."""


class AuthServer:
    """Operations of the Auth server against one connection (as supabase_auth_admin, or a probe).
    `sends`: user metadata the app sends with every signup (`signUp({options: {data}})`);
    `confirm_email`: email signups wait for their confirmation link, then confirm
    (`[auth.email] enable_confirmations`)."""

    def __init__(
        self,
        conn: psycopg.Connection,
        sends: dict[str, Any] | None = None,
        confirm_email: bool = False,
        before_signup: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.conn = conn
        self.sends = dict(sends or {})
        self.confirm_email = confirm_email
        self.before_signup = before_signup  # the before-user-created hook; admin create skips it
        self._writable: dict[str, bool] = {}
        self._identity_insert: sql.Composed | None = None
        self.skipped: set[str] = (
            set()
        )  # auxiliary tables this role could not write (reported by the probe)

    def _begin(self) -> None:
        # The Auth server's role has search_path = auth; set it per transaction so a probe that
        # runs as another role resolves unqualified "users" to auth.users too.
        self.conn.execute("SET LOCAL search_path = auth")

    def _can_write(self, table: str) -> bool:
        """Whether an auxiliary auth table exists and this role may INSERT into it (cached)."""
        if table not in self._writable:
            row = self.conn.execute(
                "SELECT coalesce(has_table_privilege(to_regclass(%s), 'INSERT'), false)", (table,)
            ).fetchone()
            self._writable[table] = bool(row and row[0])
            if not self._writable[table]:
                self.skipped.add(table)
        return self._writable[table]

    def _identity_statement(self) -> sql.Composed:
        """INSERT into identities with the timestamp columns this schema has (cached)."""
        if self._identity_insert is None:
            rows = self.conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass('identities') "
                "AND attnum > 0 AND NOT attisdropped"
            ).fetchall()
            stamps = [c for c in IDENTITY_TIMESTAMPS if c in {r[0] for r in rows}]
            columns = ["provider_id", "user_id", "identity_data", "provider", *stamps, "id"]
            values = (
                [sql.Placeholder()] * 4 + [sql.SQL("now()")] * len(stamps) + [sql.Placeholder()]
            )
            self._identity_insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                sql.Identifier("identities"),
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(values),
            )
        return self._identity_insert

    def _audit(self, action: str, actor: uuid.UUID) -> None:
        if self._can_write("audit_log_entries"):
            payload = json.dumps({"action": action, "actor_id": str(actor), "log_type": "account"})
            self.conn.execute(INSERT_AUDIT, (NIL_UUID, uuid.uuid4(), payload))

    def _insert(self, user: NewUser, app_metadata: dict[str, Any]) -> None:
        if self.sends:
            user = replace(user, user_metadata={**user.user_metadata, **self.sends})
        values = user_row(user, app_metadata)
        if self.conn.execute(INSERT_USER, values).rowcount == 0:
            raise UserNotInserted("the INSERT into users inserted no row")
        self.conn.execute(
            'UPDATE "users" SET "role" = %s, "updated_at" = now() WHERE "id" = %s',
            ("authenticated", user.id),
        )
        if not user.is_anonymous and self._can_write("identities"):
            identity = {
                "sub": str(user.id),
                "email": user.email,
                "phone": user.phone,
                **user.user_metadata,
            }
            self.conn.execute(
                self._identity_statement(),
                (
                    user.provider_id or str(user.id),
                    user.id,
                    Jsonb(identity),
                    user.provider,
                    uuid.uuid4(),
                ),
            )

    def signup(self, user: NewUser) -> uuid.UUID:
        """Any signup kind (email, phone, OAuth, SSO, anonymous): one transaction; with email
        confirmation on, an email/password signup is confirmed in a second one (the link)."""
        waits = self.confirm_email and user.provider == "email" and user.email is not None
        if self.before_signup is not None:
            self.before_signup(hook_user(user))
        with self.conn.transaction():
            self._begin()
            self._insert(replace(user, confirmed=False) if waits else user, user.app_metadata())
            self._audit("user_signedup", user.id)
        if waits:
            self.confirm(user.id)
        return user.id

    def confirm(self, user_id: uuid.UUID) -> None:
        """The confirmation link followed: the user's email is confirmed."""
        with self.conn.transaction():
            self._begin()
            self.conn.execute(
                'UPDATE "users" SET "email_confirmed_at" = now(), "confirmation_token" = \'\', '
                '"updated_at" = now() WHERE "id" = %s',
                (user_id,),
            )

    def signup_many(self, users: Iterable[NewUser]) -> int:
        """Many signups, each its own transaction, pipelined to save round trips."""
        count = 0
        with self.conn.pipeline():
            for user in users:
                self.signup(user)
                count += 1
        return count

    def admin_create(self, user: NewUser, app_metadata: dict[str, Any]) -> uuid.UUID:
        """Admin create: the INSERT carries no app metadata; a later UPDATE in the same transaction does."""
        with self.conn.transaction():
            self._begin()
            self._insert(user, {})
            self.conn.execute(
                'UPDATE "users" SET "raw_app_meta_data" = %s, "updated_at" = now() WHERE "id" = %s',
                (Jsonb({**user.app_metadata(), **app_metadata}), user.id),
            )
            self._audit("user_invited", user.id)
        return user.id

    def sign_in(self, user_id: uuid.UUID) -> None:
        """A plain sign-in: only last_sign_in_at / updated_at change."""
        with self.conn.transaction():
            self._begin()
            self.conn.execute(
                'UPDATE "users" SET "last_sign_in_at" = now(), "updated_at" = now() WHERE "id" = %s',
                (user_id,),
            )
            self._audit("login", user_id)

    def confirm_email_change(self, user_id: uuid.UUID, new_email: str) -> None:
        """The new email is applied only when the change is confirmed."""
        with self.conn.transaction():
            self._begin()
            self.conn.execute(
                'UPDATE "users" SET "email" = %s, "email_change" = \'\', "email_change_token_new" = \'\', '
                '"email_change_token_current" = \'\', "email_change_confirm_status" = 0, '
                '"email_confirmed_at" = now(), "updated_at" = now() WHERE "id" = %s',
                (new_email, user_id),
            )
            self._audit("user_modified", user_id)

    def confirm_phone_change(self, user_id: uuid.UUID, new_phone: str) -> None:
        """The new phone is applied when the OTP sent to it is verified."""
        with self.conn.transaction():
            self._begin()
            self.conn.execute(
                'UPDATE "users" SET "phone" = %s, "phone_change" = \'\', "phone_change_token" = \'\', '
                '"phone_confirmed_at" = now(), "updated_at" = now() WHERE "id" = %s',
                (new_phone, user_id),
            )
            self._audit("user_modified", user_id)

    def convert_anonymous(self, user_id: uuid.UUID, email: str) -> None:
        """An anonymous user links an email (confirmed): no longer anonymous, provider email."""
        with self.conn.transaction():
            self._begin()
            self.conn.execute(
                'UPDATE "users" SET "email" = %s, "is_anonymous" = false, "email_confirmed_at" = now(), '
                '"raw_app_meta_data" = "raw_app_meta_data" || %s, "updated_at" = now() WHERE "id" = %s',
                (email, Jsonb({"provider": "email", "providers": ["email"]}), user_id),
            )
            self._audit("user_modified", user_id)

    def update_user_metadata(self, user_id: uuid.UUID, data: dict[str, Any]) -> None:
        """supabase.auth.updateUser({ data }): merged into raw_user_meta_data."""
        with self.conn.transaction():
            self._begin()
            self.conn.execute(
                'UPDATE "users" SET "raw_user_meta_data" = "raw_user_meta_data" || %s, '
                '"updated_at" = now() WHERE "id" = %s',
                (Jsonb(data), user_id),
            )
            self._audit("user_updated", user_id)

    def soft_delete(self, user_id: uuid.UUID) -> None:
        """Admin soft delete: email and phone become opaque hashes; password and metadata emptied."""
        obfuscated = hashlib.sha256(f"{user_id}deleted".encode()).hexdigest()
        with self.conn.transaction():
            self._begin()
            self.conn.execute(
                'UPDATE "users" SET "deleted_at" = now(), "email" = %s, '
                '"phone" = CASE WHEN "phone" IS NULL THEN NULL ELSE %s END, '
                "\"encrypted_password\" = '', \"raw_user_meta_data\" = '{}', \"raw_app_meta_data\" = '{}', "
                '"updated_at" = now() WHERE "id" = %s',
                (obfuscated, obfuscated[:15], user_id),
            )
            self._audit("user_deleted", user_id)

    def hard_delete(self, user_id: uuid.UUID) -> None:
        """The default delete: removes the row; identities cascade inside auth."""
        with self.conn.transaction():
            self._begin()
            self.conn.execute('DELETE FROM "users" WHERE "id" = %s', (user_id,))
            self._audit("user_deleted", user_id)


# An import: many users in one INSERT statement (what a migration from another auth provider or a
# bulk admin script does), stored the way the Auth server stores them. Params: prefix, first, last.
IMPORT_USERS = """
INSERT INTO auth.users (instance_id, id, aud, role, email, phone, encrypted_password,
  email_confirmed_at, phone_confirmed_at, confirmation_token, recovery_token, email_change_token_new,
  email_change, phone_change, phone_change_token, email_change_token_current, reauthentication_token,
  raw_app_meta_data, raw_user_meta_data, created_at, updated_at, is_anonymous)
SELECT '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated',
  CASE WHEN g %% 10 < 8 THEN %(prefix)s || g || '@example.com' END,
  CASE WHEN g %% 10 = 8 THEN (15550000000 + g)::text END,
  '', CASE WHEN g %% 10 < 8 THEN now() END, CASE WHEN g %% 10 = 8 THEN now() END,
  '', '', '', '', '', '', '', '',
  CASE WHEN g %% 10 = 9 THEN '{"provider": "anonymous", "providers": ["anonymous"]}'::jsonb
       ELSE '{"provider": "email", "providers": ["email"]}'::jsonb END,
  CASE WHEN g %% 3 = 0 THEN jsonb_build_object('full_name', 'User ' || g) ELSE '{}'::jsonb END,
  now() - (g || ' seconds')::interval, now(), g %% 10 = 9
FROM generate_series(%(first)s::bigint, %(last)s::bigint) g
"""


def import_users(
    conn: psycopg.Connection, count: int, prefix: str = "import", first: int = 1
) -> int:
    """Insert `count` users in one statement (80% email, 10% phone, 10% anonymous); returns rows."""
    params = {"prefix": prefix, "first": first, "last": first + count - 1}
    return conn.execute(IMPORT_USERS, params).rowcount
