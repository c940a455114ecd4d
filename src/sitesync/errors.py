"""The one error tree of sitesync, and the one place that decides what an error means.

Two families:

* ``UserError`` and its children: the caller asked for something that cannot be done (unknown
  project, invalid setting, escaping path, a removal the ``min_copies`` guard refuses...). Faces show
  ``str(error)`` as one line (the CLI exits with code 2; the REST API answers 4xx). The message says
  what is wrong and what to do. Nothing has been changed when one is raised.
* ``StorageError`` and its children: raised by providers and the transfer layer while moving bytes.
  ``disposition()`` maps any exception met during a transfer onto what the worker does next:
  retry the file later (the attempt counts), or skip the whole site for a while (no attempt burnt).

Messages never contain secrets: providers build them from paths and site names only.
"""

from __future__ import annotations

import enum
import errno


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


class GuardRefusedError(UserError):
    """A safety guard (for example ``min_copies``) refused the action."""


class ConflictError(UserError):
    """The action conflicts with the current state (already exists, still in use...)."""


class DatabaseError(UserError):
    """The state database cannot be reached or is at an unexpected schema version."""


class DatabaseUnreachableError(DatabaseError):
    """The database server did not answer (down, restarting, refusing connections): a service
    waits and tries again; an interactive command reports it like any other ``DatabaseError``."""


class ProviderNotAvailableError(UserError):
    """A provider name that is not installed, or whose optional dependency is missing."""


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


class Disposition(enum.Enum):
    """What the worker does with a file whose transfer raised."""

    RETRY = "retry"  # count the attempt, back off, try again until retry_count is exhausted
    SKIP_SITE = "skip_site"  # do not count the attempt; put the file back; leave the site alone a while


def disposition(exc: BaseException) -> Disposition:
    """Decide what an exception met during a transfer means. The only place that decides it."""
    if isinstance(exc, SiteUnavailableError):
        return Disposition.SKIP_SITE
    return Disposition.RETRY


def storage_error_from_os(exc: OSError, what: str, site: str | None = None) -> StorageError:
    """Translate an ``OSError`` into the storage error tree with a readable message.

    ``what`` names the operation and path, for example ``"write /mnt/studio/a.exr"``.
    """
    code = exc.errno
    reason = exc.strerror or exc.__class__.__name__
    message = f"{what}: {reason}"
    if code in (errno.ENOSPC, errno.EDQUOT):
        return PermanentStorageError(f"{what}: no space left on the target storage; free space and re-sync", site=site)
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermanentStorageError(f"{what}: permission denied; check the site's access rights", site=site)
    if code == errno.ENOENT:
        return PermanentStorageError(f"{what}: no such file or folder", site=site)
    return TransientStorageError(message, site=site)
