"""How a finished transfer becomes the ``Outcome`` the worker records: a copy (with the storage
fingerprint of the copy, or adopted when the expected content was already there), or a failure as
``errors.decide`` judges it from the project's retry settings (a retry, a failure, a release for a
site condition, or a lost source copy to record and re-plan; the worker adds nothing of its own, and
the state store writes the outcome as it is)."""

from __future__ import annotations

from sitesync.engine.sitehealth import Backoff
from sitesync.engine.transfer import TransferResult
from sitesync.errors import RetryPolicy, SitesyncError, Verdict, decide
from sitesync.machine_view import ProjectView
from sitesync.state.records import ClaimedReplica, Outcome


def retry_policy(view: ProjectView) -> RetryPolicy:
    return RetryPolicy(view.settings.retry_count, view.settings.retry_backoff)


def site_backoff(view: ProjectView) -> Backoff:
    return Backoff(view.settings.site_retry_backoff, view.settings.site_retry_max)


def failure_outcome(
    claim: ClaimedReplica, view: ProjectView, source: str | None, exc: BaseException, duration: float
) -> Outcome:
    """The outcome of a transfer that raised ``exc``."""
    message = str(exc) if isinstance(exc, SitesyncError) else f"{type(exc).__name__}: {exc}"
    verdict = decide(exc, claim.attempts, retry_policy(view), claim.site)
    return make_outcome(claim, view, verdict.kind, source=source, error=message, duration=duration, verdict=verdict)


def make_outcome(
    claim: ClaimedReplica,
    view: ProjectView,
    kind: str,
    *,
    source: str | None = None,
    error: str | None = None,
    nbytes: int = 0,
    duration: float = 0.0,
    verdict: Verdict | None = None,
    result: TransferResult | None = None,
) -> Outcome:
    spec = view.sites.get(claim.site)
    source_spec = view.sites.get(source) if source else None
    return Outcome(
        replica_id=claim.replica_id,
        file_id=claim.file_id,
        representation_id=claim.representation_id,
        project_id=claim.project_id,
        site=claim.site,
        kind=kind,
        source_site=source,
        bytes=nbytes,
        duration=duration,
        error=error,
        attempts=verdict.attempts if verdict else claim.attempts,
        delay=verdict.delay if verdict else 0.0,
        note=verdict.describe(retry_policy(view)) if verdict and kind in ("retry", "failed") else None,
        alternatives=spec.alternatives if spec else (),
        unavailable_site=verdict.site if verdict else None,
        condition=verdict.condition if verdict else None,
        adopted=bool(result and result.adopted),
        mtime=result.mtime if result else None,
        ref=result.ref if result else None,
        # a lost source copy is recorded missing on its storage: the source site and its alternatives
        lost_alternatives=source_spec.alternatives if source_spec and kind == "source_lost" else (),
    )


__all__ = ["failure_outcome", "make_outcome", "retry_policy", "site_backoff"]
