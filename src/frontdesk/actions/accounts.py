"""Accounts: users with a role, argon2id password hashes, and login sessions.

A session is a random token in an HttpOnly cookie; the database keeps only its SHA-256, with
the user, a CSRF token and an expiry. Logins and logouts are audited."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from frontdesk.adapters.store import people
from frontdesk.core.types import utcnow
from frontdesk.service import Frontdesk

_HASHER = PasswordHasher()
# Verifying against this keeps a login for an unknown email as slow as for a known one.
_DUMMY = _HASHER.hash("frontdesk-no-such-user")
MIN_PASSWORD = 10


class AccountError(ValueError):
    """A user cannot be created (bad role, short password, email taken)."""


@dataclass(frozen=True, slots=True)
class LoggedIn:
    user: people.User
    token: str  # goes into the cookie; never stored
    csrf: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def do_add_user(
    fd: Frontdesk, email: str, name: str, role: str, password: str
) -> people.User:
    if role not in people.ROLES:
        raise AccountError(f"role must be one of {', '.join(people.ROLES)}, not {role!r}")
    if "@" not in email or len(email) > 254:
        raise AccountError(f"{email!r} is not an email address")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password needs at least {MIN_PASSWORD} characters")
    hashed = _HASHER.hash(password)

    def work(session: Session) -> people.User:
        user = people.add_user(session, str(uuid.uuid4()), email, name or email, role, hashed)
        people.audit(session, None, "user_added", detail={"user": user.id, "role": role})
        return user

    try:
        return await fd.db.run(work)
    except IntegrityError as error:
        raise AccountError(f"a user with the email {email!r} exists already") from error


async def do_login(fd: Frontdesk, email: str, password: str) -> LoggedIn | None:
    found = await fd.db.run(lambda s: people.user_by_email(s, email))
    hashed = found[1] if found else _DUMMY
    try:
        _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        await fd.db.run(lambda s: people.audit(s, found[0].id if found else None, "login_failed"))
        return None
    if found is None:
        return None
    user = found[0]
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    expires = utcnow() + timedelta(hours=fd.settings.session_hours)
    rehash = _HASHER.check_needs_rehash(hashed)

    def work(session: Session) -> None:
        people.add_session(session, token_hash(token), user.id, csrf, expires)
        if rehash:
            people.set_password_hash(session, user.id, _HASHER.hash(password))
        people.audit(session, user.id, "login")

    await fd.db.run(work)
    return LoggedIn(user, token, csrf)


async def session_of(fd: Frontdesk, token: str) -> tuple[people.User, str] | None:
    """The user and CSRF token of a live session; None when unknown or expired."""
    found = await fd.db.run(lambda s: people.session_user(s, token_hash(token)))
    if found is None:
        return None
    user, csrf, expires = found
    if expires <= utcnow():
        await fd.db.run(lambda s: people.end_session(s, token_hash(token)))
        return None
    return user, csrf


async def do_logout(fd: Frontdesk, token: str, user: people.User) -> None:
    def work(session: Session) -> None:
        people.end_session(session, token_hash(token))
        people.audit(session, user.id, "logout")

    await fd.db.run(work)
