"""Helpers shared by the cloud providers (``gdrive``, ``rclone``, ``dropbox``).

* Options that name a local file per platform, with ``{ENV_VAR}`` placeholders expanded at use time.
* Remote paths: the engine hands providers ``root base + "/" + safe relative path``; cloud
  providers split them into folder names and refuse ``.``/``..`` that an admin's root could hold.
* ``Backoff``: retries a call that a service throttled (or failed with a 5xx) for a bounded time,
  honouring ``Retry-After``; every thread of one provider waits once one of them was told to slow
  down, so a throttled service is not hammered by the other transfers meanwhile.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sitesync.errors import PermanentStorageError, SiteUnavailableError
from sitesync.settings.models import ANY_PLATFORM, PLATFORMS, current_platform

log = logging.getLogger("sitesync.providers")
T = TypeVar("T")

PlatformPath = str | dict[str, str]
"""A local path for every platform (``"/etc/x.json"``) or per platform (``{"linux": ..., "windows": ...}``)."""

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def check_platform_path(value: Any) -> Any:
    """Pydantic validator body for a ``PlatformPath`` option."""
    if value is None or isinstance(value, str):
        if isinstance(value, str) and not value.strip():
            raise ValueError("the path must not be empty")
        return value
    if not isinstance(value, dict) or not value:
        raise ValueError("give a path, or a table of platform = path")
    for platform, path in value.items():
        if platform not in (*PLATFORMS, ANY_PLATFORM):
            raise ValueError(f"unknown platform {platform!r}; use windows, linux, darwin or any")
        if not isinstance(path, str) or not path.strip():
            raise ValueError(f"the path for {platform} must be a non-empty string")
    return value


def expand_placeholders(text: str, *, site: str, key: str) -> str:
    """Replace ``{NAME}`` with the environment variable ``NAME``; ``~`` is the user's home."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        value = os.environ.get(name)
        if value is None:
            raise SiteUnavailableError(
                f"site {site}: option {key} uses {{{name}}}, but environment variable {name} is not set", site=site
            )
        return value

    return os.path.expanduser(_PLACEHOLDER.sub(one, text))


def platform_path(value: PlatformPath | None, *, site: str, key: str) -> str | None:
    """This platform's path of a ``PlatformPath`` option, placeholders expanded; ``None`` if unset."""
    if value is None:
        return None
    if isinstance(value, str):
        chosen = value
    else:
        platform = current_platform()
        found = value.get(platform) or value.get(ANY_PLATFORM)
        if found is None:
            raise SiteUnavailableError(
                f"site {site}: option {key} has no path for {platform}; add one with `sitesync settings set`", site=site
            )
        chosen = found
    return expand_placeholders(chosen, site=site, key=key)


def remote_parts(path: str, *, site: str) -> list[str]:
    """The folder and file names of a '/'-separated remote path (leading and doubled '/' ignored)."""
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise PermanentStorageError(
            f"site {site}: path {path!r} has a '.' or '..' component; fix the site's root locations", site=site
        )
    return parts


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class Retry:
    """Why a failed call may be retried, and how long the service asked us to wait (if it said)."""

    reason: str  # "throttled" (rate limit, 429) or "server" (5xx, dropped connection)
    after: float | None = None


class Backoff:
    """Bounded, shared back-off for one provider instance (all its threads).

    ``run(fn, classify, exhausted)`` calls ``fn``; when it raises and ``classify`` returns a
    ``Retry``, waits (the service's ``Retry-After`` if given, else exponential with jitter, at most
    ``cap`` seconds) and tries again, as long as the total wait stays within ``budget`` seconds.
    Then ``exhausted(retry, exc, waited)`` builds the error to raise. Other exceptions pass through.
    """

    def __init__(self, budget: float, *, first: float = 1.0, cap: float = 32.0) -> None:
        self.budget = budget
        self.first = first
        self.cap = cap
        self._lock = threading.Lock()
        self._not_before = 0.0
        self.sleep: Callable[[float], None] = time.sleep

    def _pace(self) -> None:
        with self._lock:
            delay = self._not_before - time.monotonic()
        if delay > 0:
            self.sleep(delay)

    def _hold(self, seconds: float) -> None:
        with self._lock:
            self._not_before = max(self._not_before, time.monotonic() + seconds)

    def run(
        self,
        fn: Callable[[], T],
        classify: Callable[[BaseException], Retry | None],
        exhausted: Callable[[Retry, BaseException, float], BaseException],
    ) -> T:
        waited = 0.0
        attempt = 0
        while True:
            self._pace()
            try:
                return fn()
            except Exception as exc:
                retry = classify(exc)
                if retry is None:
                    raise
                attempt += 1
                if retry.after is not None:
                    delay = retry.after
                else:
                    delay = min(self.cap, self.first * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
                if waited + delay > self.budget:
                    raise exhausted(retry, exc, waited) from None
                log.info("%s; retrying in %.1fs", retry.reason, delay)
                if retry.reason == "throttled":
                    self._hold(delay)
                self.sleep(delay)
                waited += delay
