"""After a transfer failed: was it the source copy? Checked at the source storage, at once.

A read that fails because the source file is gone, or a copy whose bytes did not match the
catalog, may mean the source copy is lost (deleted or changed behind sitesync's back), or only that
this read went wrong. ``diagnose`` looks at the source right then: first that the source site's
storage is proven to be its own (mounted, its marker: an unmounted share is never taken for lost
files), then at the file (``identity.content``: the storage fingerprint of the copy verified there,
and its hash when the fingerprint cannot tell). A file that is not there, or not the catalog's
content, becomes ``SourceLostError`` naming the source site: the worker marks that copy missing
and re-plans the file from another holder without spending the target's attempts. Anything else
keeps the original error.
"""

from __future__ import annotations

import logging

from sitesync.errors import (
    SitesyncError,
    SiteUnavailableError,
    SourceLostError,
    StorageError,
    TargetOccupiedError,
    VerificationError,
)
from sitesync.identity.content import Expected, Seen, Verdict, check_content
from sitesync.identity.storage import usable_site
from sitesync.machine_view import SiteSpec
from sitesync.providers.base import Provider
from sitesync.state.store import StateStore

log = logging.getLogger("sitesync.worker")


def diagnose(
    exc: BaseException,
    store: StateStore,
    spec: SiteSpec,
    provider: Provider,
    path: str,
    expected: Expected,
    *,
    file_id: int,
    project_id: int,
    target: str,
    actor: str,
) -> BaseException:
    """The error a failed transfer stands for: ``SourceLostError`` when the source copy at ``path``
    on site ``spec`` is gone or changed, a ``SiteUnavailableError`` when the source site cannot be
    proven right now, else ``exc`` itself."""
    if isinstance(exc, SiteUnavailableError | TargetOccupiedError | SourceLostError):
        return exc
    if not isinstance(exc, StorageError):
        return exc
    try:
        usable_site(store, spec, provider, actor, project_id)
        holder = store.replica_seen(file_id, spec.name)
        seen = Seen(holder.seen_size, holder.seen_hash, holder.seen_mtime, holder.provider_ref) if holder else None
        found = check_content(provider, path, expected, seen, deep=isinstance(exc, VerificationError))
    except SiteUnavailableError as unavailable:
        return unavailable
    except SitesyncError as other:  # the source cannot even be looked at: unknown, never lost
        log.info("could not check the source %s on %s after a failed transfer: %s", path, spec.name, other)
        return exc
    if found.verdict is Verdict.MISSING:
        reason = f"the copy on {spec.name} is missing: {path} is not there"
    elif found.verdict is Verdict.DIFFERENT:
        reason = f"the copy on {spec.name} is not the catalog's content ({found.detail}): {path} was changed"
    else:
        return exc
    return SourceLostError(
        f"source lost: {reason} (found when a transfer to {target} read it); that copy is now recorded missing and "
        "the file is copied from another site holding it, or waits until one does",
        site=spec.name,
        reason=f"{reason} (found when a transfer to {target} read it)",
    )


__all__ = ["diagnose"]
