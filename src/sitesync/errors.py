"""The one error tree of sitesync, and the one place that decides what an error means.

Two families:

* ``UserError`` and its children: the caller asked for something that cannot be done (unknown
  project, invalid setting, escaping path, a removal the ``min_copies`` guard refuses...). Faces show
  ``str(error)`` as one line (the CLI exits with code 2; the REST API answers 4xx). The message says
  what is wrong and what to do. Nothing has been changed when one is raised.
* ``StorageError`` and its children: raised by providers and the transfer layer while moving bytes.
  ``disposition()`` maps any exception met during a transfer onto what it means: retry the file
  later (the attempt counts), hold the whole site back for a while (no attempt burnt: unreachable,
  full, or not proven to be the site's storage), re-plan the file from another holder because its
  source copy is gone (no attempt burnt), or fail it at once (a file sitesync did not write is in
  the way: retrying cannot help until someone moves it). ``decide()`` turns that meaning, the
  file's attempts so far and the project's ``RetryPolicy`` into the file's next state
  (``Verdict``): the one place where a failed transfer's consequence is decided. The worker
  records the verdict as it is; the state store only writes it.

Database errors never leave ``state/`` as SQLAlchemy exceptions: they become ``DatabaseError``
(and its children) there, and deadlocks or serialization failures are retried there.

Messages never contain secrets: providers build them from paths and site names only.
"""

from __future__ import annotations

import enum
import errno
import re
from dataclasses import dataclass


class SitesyncError(Exception):
    """Base of every error sitesync raises on purpose."""


# --------------------------------------------------------------------------- user errors


class UserError(SitesyncError):
    """Bad input or an action that is refused. Shown as one line; exit code 2."""

    exit_code = 2


class NotFoundError(UserError):
    """An unknown project, site, representation, file or setting key."""


class InvalidInputError(UserError):
    """An argument that does not parse or is out of range."""


class InvalidSettingError(UserError):
    """A settings value refused at write time (the message names the key and what is allowed)."""


class PathTemplateError(UserError):
    """A catalog path template that is malformed or would escape its root."""


class ForbiddenError(UserError):
    """Refused because of where it comes from, whatever the value: a setting that names a program,
    a credentials file or a secret of this machine written to the shared settings or through the
    REST API (only this machine's local settings may hold it), or a request without a valid token."""


class GuardRefusedError(UserError):
    """A safety guard (for example ``min_copies``) refused the action."""


class ConflictError(UserError):
    """The action conflicts with the current state (already exists, still in use...)."""


class DatabaseError(UserError):
    """The state database cannot be reached or is at an unexpected schema version."""


class DatabaseUnreachableError(DatabaseError):
    """The database server did not answer (down, restarting, refusing connections): a service
    waits and tries again; an interactive command reports it like any other ``DatabaseError``."""


class DatabaseBusyError(DatabaseError):
    """The database aborted a transaction because of a concurrent one (PostgreSQL deadlock or
    serialization failure, SQLite still locked after its busy timeout). The state store retries
    these itself; one that reaches a face has failed every retry."""


class ProviderNotAvailableError(UserError):
    """A provider name that is not installed, or whose optional dependency is missing."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # what str.splitlines() also splits on
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": " "}


def one_line(message: str) -> str:
    """``message`` as exactly one printable line: line breaks and control characters a user put
    in a value (a settings key, a path) are shown escaped, and text that cannot be encoded (lone
    surrogates from JSON escapes) as backslash escapes. The faces show every error through it."""
    message = _CONTROL.sub(lambda m: _ESCAPES.get(m.group(), repr(m.group())[1:-1]), message)
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


# --------------------------------------------------------------------------- storage errors


class StorageError(SitesyncError):
    """Something went wrong while talking to storage. Subclasses say how bad it is.

    ``site`` names the site whose storage failed, when the raiser knows it.
    """

    def __init__(self, message: str, *, site: str | None = None) -> None:
        super().__init__(message)
        self.site = site


class TransientStorageError(StorageError):
    """Worth retrying later: timeouts, dropped connections, throttling."""


class PermanentStorageError(StorageError):
    """Retrying soon will not help (permission denied, missing source); the attempt counts."""


class VerificationError(StorageError):
    """The bytes read did not match the catalog's size or hash; nothing was written."""


class SiteUnavailableError(StorageError):
    """The whole site cannot be reached right now (unmounted disk, bad credentials, host down).

    The worker skips the site for a while and does not burn the files' attempts.
    """


class SiteFullError(SiteUnavailableError):
    """The site's storage has no space left (ENOSPC, quota): a condition of the site, not of the
    file. The worker backs off the site and keeps the files' attempts."""


class StorageIdentityError(SiteUnavailableError):
    """A root of the site is not proven to be the site's own storage right now: its marker is
    missing (not mounted?), belongs to another site, or the root lies inside another site's
    storage. Nothing destructive happens there until that is resolved."""


class NotSupportedError(StorageError):
    """A provider cannot take an optional path (an optional capability such as ``write_local``)
    for this operation after all; raised before anything was done. The caller falls back to the
    required contract (``write_local`` -> a streamed ``write``); one that reaches ``disposition()``
    is retried like any storage error."""


class SourceLostError(StorageError):
    """The source copy of a transfer is gone or no longer the catalog's content (checked at the
    storage after the read failed). ``site`` is the source site; the copy there is marked missing
    and the file is re-planned from another holder without spending the target's attempts."""

    def __init__(self, message: str, *, site: str, reason: str) -> None:
        super().__init__(message, site=site)
        self.reason = reason


class TargetOccupiedError(PermanentStorageError):
    """The target path already holds a different file that sitesync did not write there (or no
    longer the version it last saw): it is never replaced; the file fails at once."""


class PathEscapeError(PermanentStorageError):
    """A path would leave its site root through a symbolic link; nothing was read, written or deleted."""


class RemovalInterrupted(SitesyncError):
    """A removal was interrupted (Ctrl-C); what was deleted is recorded, the rest was kept."""

    exit_code = 130


class Disposition(enum.Enum):
    """What a failed transfer means."""

    RETRY = "retry"  # count the attempt, back off, try again until retry_count is exhausted
    SKIP_SITE = "skip_site"  # do not count the attempt; put the file back; hold the site back a while
    SITE_FULL = "site_full"  # the target's storage is full: the same, a condition of the site
    REPLAN = "replan"  # the source copy is lost: mark it missing, re-plan from another holder, no attempt
    FAIL = "fail"  # retrying cannot help (a foreign file is in the way): fail the file now

    @property
    def site_condition(self) -> str | None:
        """The condition of a whole site this meaning stands for (``"unreachable"``, ``"full"``), or
        None for a problem of the file. For a site condition the file goes back untouched and the
        worker's site back-off (``engine/sitehealth.py``) takes one step for the site."""
        return SITE_CONDITIONS.get(self)


# Dispositions that are conditions of a site rather than of a file, with the condition's name.
# Another site condition joins by adding its disposition here: the release without a burnt
# attempt and the site's back-off follow. ``sitehealth.CHECK_PROVES`` names the conditions a
# successful ``check()`` disproves; the others (a full disk) end with a successful transfer.
SITE_CONDITIONS: dict[Disposition, str] = {Disposition.SKIP_SITE: "unreachable", Disposition.SITE_FULL: "full"}


def disposition(exc: BaseException) -> Disposition:
    """Decide what an exception met during a transfer means. The only place that decides it."""
    if isinstance(exc, SiteFullError):
        return Disposition.SITE_FULL
    if isinstance(exc, SiteUnavailableError):
        return Disposition.SKIP_SITE
    if isinstance(exc, SourceLostError):
        return Disposition.REPLAN
    if isinstance(exc, TargetOccupiedError):
        return Disposition.FAIL
    return Disposition.RETRY


MAX_RETRY_DELAY = 3600.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A project's retry settings: ``count`` attempts per file and site, the first retry after
    ``backoff`` seconds, doubling with each attempt, capped at an hour."""

    count: int = 3
    backoff: float = 30.0

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt: backoff, 2*backoff... capped."""
        if self.backoff <= 0:
            return 0.0
        return min(MAX_RETRY_DELAY, self.backoff * (2 ** max(0, attempts - 1)))


@dataclass(frozen=True, slots=True)
class Verdict:
    """What happens to one file after its transfer failed."""

    # "retry": queued again after `delay`; "failed": attempts exhausted, or retrying cannot help;
    # "release": untouched (a condition of the site); "source_lost": the source copy is recorded
    # missing and the file re-planned from another holder, untouched
    kind: str
    attempts: int  # the file's attempts after this failure (unchanged for a release)
    delay: float = 0.0  # seconds until the file may be tried again
    site: str | None = None  # release: the site whose condition it was (held back by the worker)
    condition: str | None = None  # release: that condition ("unreachable"...)

    def describe(self, policy: RetryPolicy) -> str:
        """The attempt in words, for the file's history."""
        if self.kind == "failed":
            return f"attempt {self.attempts}/{policy.count}, giving up"
        return f"attempt {self.attempts}/{policy.count}, next in {self.delay:.0f}s"


def decide(exc: BaseException, attempts: int, policy: RetryPolicy, target: str) -> Verdict:
    """The consequence of ``exc`` for a file with ``attempts`` failed attempts so far, whose
    transfer to ``target`` raised it. The one place where a failure becomes a retry, a failure for
    good, or a release of the file because of its site."""
    meaning = disposition(exc)
    condition = meaning.site_condition
    if condition is not None:
        site = exc.site if isinstance(exc, StorageError) and exc.site else target
        return Verdict("release", attempts, 0.0, site, condition)
    if meaning is Disposition.REPLAN:  # the source's problem: the file goes back, its attempts untouched
        return Verdict("source_lost", attempts)
    n = attempts + 1
    if n >= policy.count or meaning is Disposition.FAIL:
        return Verdict("failed", n)
    return Verdict("retry", n, policy.delay(n))


def storage_error_from_os(exc: OSError, what: str, site: str | None = None) -> StorageError:
    """Translate an ``OSError`` into the storage error tree with a readable message.

    ``what`` names the operation and path, for example ``"write /mnt/studio/a.exr"``.
    """
    code = exc.errno
    reason = exc.strerror or exc.__class__.__name__
    message = f"{what}: {reason}"
    if code in (errno.ENOSPC, errno.EDQUOT):
        return SiteFullError(
            f"{what}: no space left on the storage; free space there (transfers to the site wait and "
            "resume by themselves)",
            site=site,
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermanentStorageError(f"{what}: permission denied; check the site's access rights", site=site)
    if code == errno.ENOENT:
        return PermanentStorageError(f"{what}: no such file or folder", site=site)
    return TransientStorageError(message, site=site)
