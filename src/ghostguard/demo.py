"""The demo: a Supabase-like database with real signups and ~5% ghosts, then scan -> apply -> verify."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ghostguard import catalog, db
from ghostguard import deploy as apply_mod
from ghostguard.backfill.options import ProgressCallback
from ghostguard.checks import scan
from ghostguard.checks.scan import ScanReport
from ghostguard.config import Config
from ghostguard.deploy import ApplyResult
from ghostguard.sandbox import Sandbox
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import NewUser

DEMO_DATABASE = "postgres"
# Signup mix, by share: what a typical Supabase app sees.
MIX = (
    ("email", 0.55),
    ("google", 0.12),
    ("github", 0.08),
    ("apple", 0.04),
    ("phone", 0.10),
    ("anonymous", 0.06),
    ("sso", 0.03),
    ("admin", 0.02),
)
NEVER_GOT_PROFILE = 0.035  # the app's client-side profile creation never ran
PROFILE_DELETED = 0.012  # a cleanup job deleted the profile row
SOFT_DELETED = 0.006  # admin soft delete (some of them are ghosts already)

Progress = Callable[[str], None]


@dataclass
class DemoReport:
    users: int
    where: str
    postgres_version: str
    signup_seconds: float
    before: ScanReport
    applied: ApplyResult
    apply_seconds: float
    after: ScanReport
    new_signups: dict[str, bool] = field(default_factory=dict[str, bool])

    @property
    def passed(self) -> bool:
        return (
            self.after.ghost_total == 0
            and self.applied.report.passed
            and all(self.new_signups.values())
        )


def _make_user(kind: str, n: int, rng: random.Random) -> NewUser:
    name = f"User {n}"
    if kind == "google":
        return authserver.google_user(f"g{n}@gmail.example", name, f"https://lh3.example/{n}.png")
    if kind == "github":
        return authserver.github_user(
            f"gh{n}@users.example", f"dev{n}", f"https://avatars.example/{n}"
        )
    if kind == "apple":
        return authserver.apple_user(f"a{n}@privaterelay.example" if rng.random() < 0.6 else None)
    if kind == "phone":
        return authserver.phone_user(f"1555{n:07d}")
    if kind == "anonymous":
        return authserver.anonymous_user()
    if kind == "sso":
        # Shares the email of a regular user when one exists, as SSO users may.
        return authserver.sso_user(f"user{n - 1}@example.com")
    return (
        authserver.email_user(f"user{n}@example.com", full_name=name)
        if rng.random() < 0.7
        else authserver.email_user(f"user{n}@example.com")
    )


def _population(count: int, rng: random.Random) -> Iterator[tuple[str, NewUser]]:
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    for n, kind in enumerate(rng.choices(kinds, weights, k=count)):
        yield kind, _make_user(kind, n, rng)


SIGNUP_CHUNK = 2_000  # signups pipelined per round, between progress lines
PROGRESS_EVERY = 5.0  # seconds between progress lines while signing up


def seed(
    url: str, count: int, rng: random.Random, progress: Progress = lambda _: None
) -> list[uuid.UUID]:
    """Sign `count` users up the Auth server's way; the app creates most profiles client-side.
    A line to `progress` every few seconds: a large demo takes minutes."""
    with db.connection(db.with_user(url, authserver.AUTH_ROLE), autocommit=True) as auth_conn:
        server = authserver.AuthServer(auth_conn)
        users = list(_population(count, rng))
        signups = [u for kind, u in users if kind != "admin"]
        started = last = time.perf_counter()
        for done in range(0, len(signups), SIGNUP_CHUNK):
            server.signup_many(signups[done : done + SIGNUP_CHUNK])
            now = time.perf_counter()
            if now - last >= PROGRESS_EVERY:
                finished = min(done + SIGNUP_CHUNK, len(signups))
                progress(
                    f"signed up {finished:,}/{len(signups):,} users "
                    f"({finished / len(signups):.0%}, {finished / (now - started):,.0f}/s)"
                )
                last = now
        for kind, user in users:
            if kind == "admin":
                server.admin_create(user, {"roles": ["staff"]})
        ids = [u.id for _, u in users]
        with_profile = [i for i in ids if rng.random() >= NEVER_GOT_PROFILE]
        with db.connection(url, autocommit=True) as app:
            app.execute(
                "INSERT INTO public.users (id, email, full_name, avatar_url, created_at) "
                "SELECT id, email, coalesce(raw_user_meta_data->>'full_name', raw_user_meta_data->>'name'), "
                "coalesce(raw_user_meta_data->>'avatar_url', raw_user_meta_data->>'picture'), created_at "
                "FROM auth.users WHERE id = ANY(%s)",
                (with_profile,),
            )
            deleted = rng.sample(with_profile, int(count * PROFILE_DELETED))
            app.execute("DELETE FROM public.users WHERE id = ANY(%s)", (deleted,))
        never = sorted(set(ids) - set(with_profile))
        half = int(count * SOFT_DELETED) // 2
        for user_id in rng.sample(never, min(half, len(never))) + rng.sample(with_profile, half):
            server.soft_delete(user_id)
    return ids


def signup_every_kind(url: str) -> dict[str, bool]:
    """After apply: one signup of each kind through the Auth server's path; did each get a profile?"""
    rng = random.Random(99)
    results: dict[str, bool] = {}
    with (
        db.connection(db.with_user(url, authserver.AUTH_ROLE), autocommit=True) as auth_conn,
        db.connection(url, autocommit=True) as app,
    ):
        server = authserver.AuthServer(auth_conn)
        for n, (kind, _) in enumerate(MIX, start=900_000):
            user = _make_user(kind, n, rng)
            if kind == "admin":
                server.admin_create(user, {"roles": ["staff"]})
            else:
                server.signup(user)
            row = app.execute(
                "SELECT count(*) FROM public.users WHERE id = %s", (user.id,)
            ).fetchone()
            results[kind] = bool(row and row[0] == 1)
    return results


def run(
    sandbox: Sandbox,
    users: int = 10_000,
    progress: Progress = lambda _: None,
    backfill_progress: ProgressCallback | None = None,
) -> DemoReport:
    """Reset the sandbox's database, seed it, and run scan -> apply -> verify -> new signups.
    `progress` gets a line per step (and while signing up); `backfill_progress` apply's batches."""
    status = sandbox.start()
    url = sandbox.fresh_database(DEMO_DATABASE)
    rng = random.Random(20260127)
    progress(f"signing up {users:,} users through the Auth server's path ...")
    started = time.perf_counter()
    seed(url, users, rng, progress)
    signup_seconds = time.perf_counter() - started
    config = Config()
    with db.connection(url, autocommit=True) as conn:
        shape = catalog.resolve(conn, config)
        progress("scan ...")
        before = scan.scan(conn, config, shape)
        progress("apply ...")
        started = time.perf_counter()
        applied = apply_mod.apply(
            conn, config, shape, apply_mod.ApplyOptions(progress=backfill_progress)
        )
        apply_seconds = time.perf_counter() - started
        progress("new signups of every kind ...")
        new_signups = signup_every_kind(url)
        after = scan.scan(conn, config, shape)
    return DemoReport(
        users=users,
        where=db.describe(url),
        postgres_version=status.version or "?",
        signup_seconds=signup_seconds,
        before=before,
        applied=applied,
        apply_seconds=apply_seconds,
        after=after,
        new_signups=new_signups,
    )
