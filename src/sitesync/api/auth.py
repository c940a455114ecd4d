"""Who may use a ``sitesync serve``: its token, one-time login links and dashboard sessions.

* **The token.** ``sitesync serve`` requires one by default, on loopback too (any local user or
  process can reach a loopback port). Unless ``--token``/``SITESYNC_TOKEN`` gives one, it is read
  from this machine's config folder (``api_token``, mode 0600), generated there on the first start.
  The command line (``sitesync dashboard``) and the Python client (``sitesync.api.remote``) read
  the same file, so the user who runs the server never copies it by hand; other users cannot read it.
* **Login links.** A browser cannot send a bearer header, so ``serve`` prints a link
  ``/login?code=...`` whose code is valid once, for ``LOGIN_CODE_SECONDS`` (``sitesync dashboard``
  asks the running server for a new one with the token). Opening it sets the session cookie.
* **Sessions.** The cookie holds an expiry and an HMAC of it keyed by the token: stateless (a
  restart keeps sessions), and a new token (``sitesync token new``) ends every session. It is
  HttpOnly (page scripts cannot read it) and SameSite=Strict (no other site's page makes the
  browser send it). The dashboard can also trade the token itself for the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable

from sitesync.private import tighten, write_private_file
from sitesync.settings.machine import MachinePaths

SESSION_COOKIE = "sitesync_session"
SESSION_SECONDS = 7 * 86400
LOGIN_CODE_SECONDS = 15 * 60
LOGIN_PATH = "/login"


def read_token(paths: MachinePaths) -> str | None:
    """This machine's API token, or ``None`` if none was generated (or this user cannot read it)."""
    try:
        token = paths.api_token_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None


def ensure_token(paths: MachinePaths) -> str:
    """The token in this machine's config folder, generated (0600) if there is none yet."""
    token = read_token(paths)
    if token is None:
        token = secrets.token_urlsafe(32)
        write_private_file(paths.api_token_file, token + "\n", what="API token file")
    else:
        tighten(paths.api_token_file, 0o600)
    return token


def new_token(paths: MachinePaths) -> str:
    """Replace the token (running servers keep using the old one until they restart)."""
    token = secrets.token_urlsafe(32)
    write_private_file(paths.api_token_file, token + "\n", what="API token file")
    return token


def token_matches(sent: str, token: str) -> bool:
    return hmac.compare_digest(sent.encode(), token.encode())


def _sign(token: str, expires: int) -> str:
    return hmac.new(token.encode(), f"session:{expires}".encode(), hashlib.sha256).hexdigest()


def session_value(token: str, now: float | None = None) -> str:
    expires = int((now if now is not None else time.time()) + SESSION_SECONDS)
    return f"{expires}.{_sign(token, expires)}"


def session_valid(value: str, token: str, now: float | None = None) -> bool:
    expires_text, _, signature = value.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12:
        return False
    expires = int(expires_text)
    if expires < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(signature.encode(), _sign(token, expires).encode())


class LoginCodes:
    """One-time login codes, kept in the server's memory."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._codes: dict[str, float] = {}

    def issue(self) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            now = self._clock()
            self._codes = {c: until for c, until in self._codes.items() if until > now}
            self._codes[code] = now + LOGIN_CODE_SECONDS
        return code

    def redeem(self, code: str) -> bool:
        """True once per issued code, within its lifetime."""
        with self._lock:
            until = self._codes.pop(code, None)
        return until is not None and until > self._clock()


__all__ = [
    "LOGIN_CODE_SECONDS",
    "LOGIN_PATH",
    "SESSION_COOKIE",
    "SESSION_SECONDS",
    "LoginCodes",
    "ensure_token",
    "new_token",
    "read_token",
    "session_valid",
    "session_value",
    "token_matches",
]
