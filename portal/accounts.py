"""Portal accounts and sessions: who may sign in, for which country, and for how long.

An account belongs to one reporting country (several people per country) or
to the Observatory's staff: `ADMIN` (manages accounts, sees every country) or
`PPT` (the Presidency Pro-Tempore, sees every country). The administrator
manages them with `hmo users add|disable|reset|list`.

They live in `<data>/portal/accounts.sqlite3`, beside the warehouse and not in
it: `hmo rebuild` makes a new warehouse from the archive, and people's
accounts are not figures to rederive. SQLite because sign-ins from several
requests at once must not lose a failed-attempt count (transactions), and it
is in the standard library.

Passwords are hashed with Argon2id (argon2-cffi, the library the OWASP
password storage cheat sheet names first); the portal never stores or logs a
password. Twenty wrong passwords in a row lock the account for
`HMO_PORTAL_LOCK_MINUTES` (default 15): the count is per account, so an
attacker spreading guesses over many addresses gains nothing. A session is a
random token in a cookie; only its SHA-256 is stored, so a copy of this file
opens no session. Sessions end after `HMO_PORTAL_IDLE_MINUTES` without a
request (default 30) and in any case after 12 hours; disabling an account or
resetting its password ends its sessions.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

from hmo.errors import ConfigurationError, HmoError
from hmo.settings import ISO3_MEMBERS, Paths

STAFF_SCOPES = ("ADMIN", "PPT")
LANGUAGES = ("es", "en")
MAX_FAILED_SIGN_INS = 20
ABSOLUTE_SESSION_SECONDS = 12 * 3600
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_SCHEMA = """
create table if not exists users (
    email text primary key,
    scope text not null,               -- a member's ISO3, ADMIN or PPT
    language text not null default 'es',
    password_hash text not null,
    disabled_at text,
    failed_sign_ins integer not null default 0,
    locked_until real,
    created_at text not null,
    password_set_at text not null
);
create table if not exists sessions (
    token_sha256 text primary key,
    email text not null references users(email),
    csrf_token text not null,
    created_at real not null,
    last_seen real not null
);
"""


class AccountError(HmoError):
    """An account command the administrator must correct (unknown scope, bad e-mail, no such user)."""


class SignInRefused(HmoError):
    """Wrong e-mail or password, a disabled account, or one locked after too many failures.

    The portal shows one message for all of them: which one it was is only in
    the audit log, so a stranger learns nothing about which accounts exist.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class User:
    email: str
    scope: str
    language: str

    @property
    def is_staff(self) -> bool:
        return self.scope in STAFF_SCOPES

    def may_see(self, country: str) -> bool:
        return self.is_staff or self.scope == country


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str


def _minutes(name: str, default: int) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default * 60.0
    try:
        value = float(text)
    except ValueError:
        value = -1
    if value <= 0:
        raise ConfigurationError(f"{name} must be a positive number of minutes, not {text!r}")
    return value * 60.0


def lock_seconds() -> float:
    return _minutes("HMO_PORTAL_LOCK_MINUTES", 15)


def idle_seconds() -> float:
    return _minutes("HMO_PORTAL_IDLE_MINUTES", 30)


def _hasher():  # type: ignore[no-untyped-def]
    from argon2 import PasswordHasher

    return PasswordHasher()


def normalise_email(email: str) -> str:
    cleaned = email.strip().lower()
    if not _EMAIL.match(cleaned):
        raise AccountError(f"{email!r} is not an e-mail address")
    return cleaned


def normalise_scope(scope: str) -> str:
    cleaned = scope.strip().upper()
    if cleaned not in ISO3_MEMBERS and cleaned not in STAFF_SCOPES:
        raise AccountError(f"{scope!r} is neither a member country (ISO3, for example GTM) nor ADMIN or PPT")
    return cleaned


def new_password() -> str:
    """A temporary password for the administrator to hand over: 16 characters, easy to read aloud."""
    alphabet = "abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now_text() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class Accounts:
    """The accounts file of a data directory. Each method is one transaction."""

    def __init__(self, paths: Paths) -> None:
        self.path = paths.root / "portal" / "accounts.sqlite3"

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"cannot open the portal's accounts in {self.path}: {exc}") from None
        try:
            con.execute("pragma foreign_keys = on")
            con.executescript(_SCHEMA)
            con.execute("begin immediate")  # one writer at a time: failed-attempt counts are never lost
            yield con
            con.execute("commit")
        except SignInRefused:
            con.execute("commit")  # a failed attempt counts
            raise
        except BaseException:
            if con.in_transaction:
                con.execute("rollback")
            raise
        finally:
            con.close()

    # ----------------------------------------------------------------- administration

    def add(self, scope: str, email: str, password: str | None = None, language: str = "es") -> str:
        """A new account; returns its password (the one given, or a new temporary one)."""
        scope, email = normalise_scope(scope), normalise_email(email)
        if language not in LANGUAGES:
            raise AccountError(f"language: one of {', '.join(LANGUAGES)}")
        password = password or new_password()
        hashed = _hasher().hash(password)
        with self._db() as con:
            if con.execute("select 1 from users where email = ?", [email]).fetchone():
                raise AccountError(f"{email} already has an account (`hmo users reset` gives it a new password)")
            con.execute("insert into users (email, scope, language, password_hash, created_at, password_set_at) "
                        "values (?, ?, ?, ?, ?, ?)", [email, scope, language, hashed, _now_text(), _now_text()])
        return password

    def _existing(self, con: sqlite3.Connection, scope: str, email: str) -> str:
        scope, email = normalise_scope(scope), normalise_email(email)
        row = con.execute("select scope from users where email = ?", [email]).fetchone()
        if row is None:
            raise AccountError(f"{email} has no account")
        if row[0] != scope:
            raise AccountError(f"{email} belongs to {row[0]}, not {scope}")
        return email

    def disable(self, scope: str, email: str) -> None:
        with self._db() as con:
            email = self._existing(con, scope, email)
            con.execute("update users set disabled_at = ? where email = ?", [_now_text(), email])
            con.execute("delete from sessions where email = ?", [email])

    def reset(self, scope: str, email: str, password: str | None = None) -> str:
        """A new password for the account, enabled and unlocked again; its sessions end."""
        password = password or new_password()
        hashed = _hasher().hash(password)
        with self._db() as con:
            email = self._existing(con, scope, email)
            con.execute("update users set password_hash = ?, password_set_at = ?, disabled_at = null, "
                        "failed_sign_ins = 0, locked_until = null where email = ?", [hashed, _now_text(), email])
            con.execute("delete from sessions where email = ?", [email])
        return password

    def list(self) -> list[dict[str, object]]:
        with self._db() as con:
            rows = con.execute("select scope, email, language, created_at, disabled_at, failed_sign_ins, "
                               "locked_until from users order by scope, email").fetchall()
        return [{"scope": s, "email": e, "language": lang, "created_at": c,
                 "state": "disabled" if d else "locked" if (lk or 0) > time.time() else "active",
                 "failed_sign_ins": f} for s, e, lang, c, d, f, lk in rows]

    # ----------------------------------------------------------------- signing in

    def sign_in(self, email: str, password: str, now: float | None = None) -> tuple[str, Session]:
        """A new session (its cookie token and the session) or SignInRefused with the reason."""
        from argon2.exceptions import InvalidHashError, VerificationError

        now = time.time() if now is None else now
        hasher = _hasher()
        try:
            email = normalise_email(email)
        except AccountError:
            email = ""
        with self._db() as con:
            row = con.execute("select password_hash, disabled_at, failed_sign_ins, locked_until, scope, language "
                              "from users where email = ?", [email]).fetchone()
            if row is None:
                # As long as a known account's check, so the time taken does not say which exist.
                with contextlib.suppress(VerificationError, InvalidHashError):
                    hasher.verify(_DUMMY_HASH, password)
                raise SignInRefused("unknown e-mail")
            hashed, disabled_at, failed, locked_until, scope, language = row
            if disabled_at:
                raise SignInRefused("account disabled")
            if locked_until and locked_until > now:
                raise SignInRefused("account locked after too many wrong passwords")
            refused: SignInRefused | None = None
            try:
                hasher.verify(hashed, password)
            except (VerificationError, InvalidHashError):
                failed = 0 if locked_until else failed  # a lock that ran out starts a new count
                failed += 1
                lock = now + lock_seconds() if failed >= MAX_FAILED_SIGN_INS else None
                con.execute("update users set failed_sign_ins = ?, locked_until = ? where email = ?",
                            [0 if lock else failed, lock, email])
                refused = SignInRefused("wrong password; account locked" if lock else "wrong password")
            if refused is not None:
                raise refused  # _db commits first: the count must outlive the refusal
            con.execute("update users set failed_sign_ins = 0, locked_until = null where email = ?", [email])
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            con.execute("delete from sessions where last_seen < ? or created_at < ?",
                        [now - idle_seconds(), now - ABSOLUTE_SESSION_SECONDS])
            con.execute("insert into sessions values (?, ?, ?, ?, ?)", [_token_hash(token), email, csrf, now, now])
        return token, Session(User(email, scope, language), csrf)

    def session(self, token: str | None, now: float | None = None) -> Session | None:
        """The live session of a cookie's token (its idle clock restarted), or None."""
        if not token:
            return None
        now = time.time() if now is None else now
        with self._db() as con:
            row = con.execute(
                "select s.email, s.csrf_token, s.created_at, s.last_seen, u.scope, u.language, u.disabled_at "
                "from sessions s join users u using (email) where s.token_sha256 = ?", [_token_hash(token)]).fetchone()
            if row is None:
                return None
            email, csrf, created_at, last_seen, scope, language, disabled_at = row
            if disabled_at or now - last_seen > idle_seconds() or now - created_at > ABSOLUTE_SESSION_SECONDS:
                con.execute("delete from sessions where token_sha256 = ?", [_token_hash(token)])
                return None
            con.execute("update sessions set last_seen = ? where token_sha256 = ?", [now, _token_hash(token)])
        return Session(User(email, scope, language), csrf)

    def sign_out(self, token: str) -> None:
        with self._db() as con:
            con.execute("delete from sessions where token_sha256 = ?", [_token_hash(token)])

    def set_language(self, email: str, language: str) -> None:
        if language not in LANGUAGES:
            raise AccountError(f"language: one of {', '.join(LANGUAGES)}")
        with self._db() as con:
            con.execute("update users set language = ? where email = ?", [language, email])


def csrf_matches(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf_token.encode(), (sent or "").encode())


# The hash of a password nobody has: what an unknown e-mail is checked against.
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG4oE0sYBXVto"
