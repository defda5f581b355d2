"""The kinds of signup the Auth server writes, in one list: their names (what --accept-failing
takes and every report shows), how to tell a project has such users, and which setting of
`supabase/config.toml` enables them. checks/signup_kinds.py gives each its Auth-server action.
Also the one way existing users are told apart by kind (`user_kind`), which scan's census and
init's sample count by."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import LiteralString

from psycopg import sql

# config.toml settings, as dotted paths, and the Supabase CLI's default for each when unset.
SIGNUP = ("auth.enable_signup", True)
EMAIL = ("auth.email.enable_signup", True)
PHONE = ("auth.sms.enable_signup", False)
ANONYMOUS = ("auth.enable_anonymous_sign_ins", False)
ALWAYS: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True)
class SignupKind:
    name: str
    what: str
    users: LiteralString  # SQL over auth.users `au`: a user of this kind
    enabled_by: tuple[tuple[str, bool], ...]  # every one must be true (config.toml, defaults)
    provider: str | None = None  # an OAuth provider: [auth.external.<provider>] enabled
    outside_config: bool = False  # set up elsewhere: config.toml cannot say it is on

    def condition(self) -> sql.Composed:
        return sql.SQL(self.users).format(provider=sql.Literal(self.provider))

    def settings(self) -> tuple[tuple[str, bool], ...]:
        if self.provider is None:
            return self.enabled_by
        return (*self.enabled_by, (f"auth.external.{self.provider}.enabled", False))


def oauth(provider: str) -> SignupKind:
    """A signup through an OAuth provider: every one config.toml can enable is judged."""
    return SignupKind(
        provider,
        f"sign-in with {provider} (OAuth)",
        "au.raw_app_meta_data ->> 'provider' = {provider}",
        (SIGNUP,),
        provider,
    )


SIGNUP_KINDS: tuple[SignupKind, ...] = (
    SignupKind(
        "email",
        "email and password, magic link or OTP",
        "au.email IS NOT NULL AND NOT au.is_sso_user AND NOT au.is_anonymous",
        (SIGNUP, EMAIL),
    ),
    SignupKind("phone", "phone and SMS OTP (email NULL)", "au.phone IS NOT NULL", (SIGNUP, PHONE)),
    SignupKind(
        "anonymous", "anonymous sign-in (no email, no phone)", "au.is_anonymous", (ANONYMOUS,)
    ),
    oauth("google"),
    oauth("github"),
    oauth("apple"),
    oauth("azure"),
    SignupKind(
        "sso_shared_email",
        "SAML SSO with an address an email user already has",
        "au.is_sso_user",
        ALWAYS,
        outside_config=True,  # SAML providers are added with `supabase sso add`, not config.toml
    ),
    SignupKind(
        "admin_create",
        "created or invited by an admin (app metadata set after the INSERT)",
        "au.email IS NOT NULL AND NOT au.is_sso_user",
        ALWAYS,  # the admin API does not depend on enable_signup
    ),
    SignupKind(
        "email_change",
        "an email change, applied at confirmation",
        "au.email IS NOT NULL AND NOT au.is_sso_user",
        (EMAIL,),
    ),
    SignupKind(
        "anonymous_conversion",
        "an anonymous user who adds an email",
        "au.is_anonymous",
        (ANONYMOUS,),
    ),
    SignupKind("soft_delete", "an admin soft delete", "au.deleted_at IS NOT NULL", ALWAYS),
)
NAMES: tuple[str, ...] = tuple(k.name for k in SIGNUP_KINDS)
BY_NAME = {k.name: k for k in SIGNUP_KINDS}

# The kinds of existing users scan counts ghosts by (soft-deleted first: it counts once).
GHOST_KINDS = ("email", "phone", "anonymous", "sso", "soft_deleted", "other")
# (auth column it needs, the WHEN that names the kind); checked in this order.
_SOFT_DELETED = ("deleted_at", "WHEN au.deleted_at IS NOT NULL THEN 'soft_deleted'")
_BY_PROVIDER = (
    "raw_app_meta_data",
    "WHEN au.raw_app_meta_data ->> 'provider' IS NOT NULL THEN au.raw_app_meta_data ->> 'provider'",
)
_USER_RULES: tuple[tuple[str, LiteralString], ...] = (
    ("is_anonymous", "WHEN au.is_anonymous THEN 'anonymous'"),
    ("is_sso_user", "WHEN au.is_sso_user THEN 'sso'"),
    ("email", "WHEN au.email IS NOT NULL THEN 'email'"),
    ("phone", "WHEN au.phone IS NOT NULL THEN 'phone'"),
)


def user_kind(
    columns: Collection[str], *, soft_deleted: bool = False, by_provider: bool = False
) -> sql.Composable:
    """SQL over auth.users `au` naming a user's kind, with the rules whose column the table has:
    `soft_deleted` first when asked, an OAuth user by its provider when `by_provider`, else
    anonymous, sso, email, phone, other."""
    rules = [*([_SOFT_DELETED] if soft_deleted else []), *_USER_RULES[:2]]
    rules += [_BY_PROVIDER] if by_provider else []
    rules += _USER_RULES[2:]
    whens = [sql.SQL(rule) for column, rule in rules if column in columns]
    if not whens:
        return sql.Literal("other")
    return sql.SQL("CASE {} ELSE 'other' END").format(sql.SQL(" ").join(whens))
