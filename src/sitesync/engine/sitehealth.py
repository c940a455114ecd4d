"""Which sites a worker may use right now: the site back-off.

A site that cannot be used (unreachable; another *site condition* of ``errors.SITE_CONDITIONS``)
is held back for a while, without burning any file's attempts, and looked at again when the while
is over. The rules a studio relies on:

* **One outage, one step.** The first failure of an outage (a failed ``check()``, or a transfer
  whose error is a site condition) holds the site back for the project's ``site_retry_backoff``.
  Transfers of the same outage that fail afterwards (several were in flight) change nothing.
* **One failed re-check, one more step.** When the hold is over the site is checked once; if it
  still fails, the hold doubles (capped at ``site_retry_max``). The delay logged is the delay applied.
* **A successful check ends it** for the conditions a check can see (``CHECK_PROVES``: the site
  answers again); the back-off resets with the first successful transfer (a site whose check
  passes but whose transfers fail again at once goes on from the hold it had, instead of starting
  over every few seconds). For other conditions (a full disk answers checks fine) the site is
  tried again on probation and the outage ends with its first successful transfer.
* A failure reported by a transfer that started before the site last recovered belongs to the
  outage that ended: it puts the file back, and does not hold the recovered site back again.

Times come from an injectable monotonic clock, so tests drive the back-off without sleeping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sitesync.errors import SitesyncError

log = logging.getLogger("sitesync.worker")

UNREACHABLE = "unreachable"
CHECK_PROVES = frozenset({UNREACHABLE})  # conditions a successful check() shows to be over

SiteKey = tuple[str, str]  # (project, site)


@dataclass(frozen=True)
class Backoff:
    """A project's site back-off: the first hold and the longest one, in seconds."""

    first: float = 15.0
    longest: float = 600.0

    def after(self, delay: float | None) -> float:
        """The hold following one of ``delay`` seconds (None: the first of an outage)."""
        if delay is None:
            return self.first
        return max(self.first, min(self.longest, delay * 2))


@dataclass
class _Outage:
    reason: str
    condition: str
    delay: float  # the hold in force
    until: float  # monotonic time of the next check
    started: float
    probation: bool = False  # hold over and check passed; waiting for a transfer to confirm


class SiteHealth:
    """The back-off state of every (project, site) a worker uses."""

    def __init__(
        self,
        record: Callable[[str, str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._record = record or (lambda kind, site, message: None)
        self._clock = clock
        self._outages: dict[SiteKey, _Outage] = {}
        self._checked: set[SiteKey] = set()  # answered a check since the settings last changed
        self._recovered: dict[SiteKey, float] = {}  # when each site last came back
        self._unproven: dict[SiteKey, float] = {}  # back after a check, no transfer worked yet: its last hold

    def now(self) -> float:
        return self._clock()

    # ------------------------------------------------------------------ questions

    def usable(self, key: SiteKey, check: Callable[[], None], backoff: Backoff) -> bool:
        """May the site be used now? Runs ``check`` (raising when the site cannot be used) for a
        site not checked yet or whose hold is over, and keeps its outcome."""
        outage = self._outages.get(key)
        now = self._clock()
        if outage is not None and not outage.probation and outage.until > now:
            return False
        if key in self._checked and (outage is None or outage.probation):
            return True
        try:
            check()
        except Exception as exc:  # a provider bug must not stop the worker either
            reason = str(exc) if isinstance(exc, SitesyncError) else f"{type(exc).__name__}: {exc}"
            self._step(key, reason, UNREACHABLE, backoff)
            return False
        self._checked.add(key)
        if outage is not None:
            if outage.condition in CHECK_PROVES:
                self._end(key, outage)
            elif not outage.probation:
                outage.probation = True
                log.info("site %s: hold over, trying it again (%s)", key[1], outage.reason)
        return True

    def next_check(self) -> float | None:
        """Monotonic time of the earliest re-check of a held site, or None."""
        return min((o.until for o in self._outages.values() if not o.probation), default=None)

    def held(self) -> dict[SiteKey, str]:
        """(project, site) -> why it is held back or on probation now."""
        return {key: o.reason for key, o in list(self._outages.items())}

    def reached(self) -> frozenset[SiteKey]:
        """The sites that answered their last check and are not held back."""
        return frozenset(k for k in self._checked.copy() if k not in self._outages)

    def holds(self) -> dict[SiteKey, tuple[str, float]]:
        """(project, site) -> (why it is held back, when it is checked again; Unix time)."""
        offset = time.time() - self._clock()
        return {key: (o.reason, o.until + offset) for key, o in list(self._outages.items()) if not o.probation}

    def delay(self, key: SiteKey) -> float | None:
        """The hold in force for ``key`` (seconds), or None when the site is in good standing."""
        outage = self._outages.get(key)
        return None if outage is None else outage.delay

    # ------------------------------------------------------------------ reports

    def failed(
        self,
        key: SiteKey,
        reason: str,
        backoff: Backoff,
        *,
        condition: str = UNREACHABLE,
        started: float | None = None,
    ) -> bool:
        """A transfer that ``started`` at that monotonic time met a condition of the site.
        Returns True if this began an outage (or a further step on probation)."""
        outage = self._outages.get(key)
        if outage is not None and not outage.probation:
            return False  # the same outage: no further step
        recovered = self._recovered.get(key)
        if outage is None and started is not None and recovered is not None and started < recovered:
            return False  # from before the site came back
        self._step(key, reason, condition, backoff)
        return True

    def succeeded(self, key: SiteKey) -> None:
        """A transfer to or from the site worked: a site on probation is in good standing again."""
        outage = self._outages.get(key)
        if outage is not None and outage.probation:
            self._end(key, outage)
        self._unproven.pop(key, None)

    def forget_checks(self) -> None:
        """The settings changed: check every site again before using it (holds stay)."""
        self._checked.clear()

    # ------------------------------------------------------------------ transitions

    def _step(self, key: SiteKey, reason: str, condition: str, backoff: Backoff) -> None:
        now = self._clock()
        outage = self._outages.get(key)
        project, site = key
        delay = backoff.after(outage.delay if outage is not None else self._unproven.get(key))
        self._checked.discard(key)
        if outage is None:
            self._outages[key] = _Outage(reason, condition, delay, now + delay, now)
            log.warning("site %s %s for project %s (next check in %.0fs): %s", site, condition, project, delay, reason)
            self._record("site_unavailable", site, reason)
            return
        outage.reason, outage.condition, outage.delay, outage.until = reason, condition, delay, now + delay
        outage.probation = False
        down = now - outage.started
        log.warning(
            "site %s still %s for project %s after %.0fs (next check in %.0fs): %s",
            site,
            condition,
            project,
            down,
            delay,
            reason,
        )

    def _end(self, key: SiteKey, outage: _Outage) -> None:
        now = self._clock()
        del self._outages[key]
        self._recovered[key] = now
        self._unproven[key] = outage.delay
        project, site = key
        log.info("site %s is usable again for project %s (after %.0fs)", site, project, now - outage.started)
        self._record("site_available", site, f"project {project}: back after {now - outage.started:.0f}s")


__all__ = ["CHECK_PROVES", "UNREACHABLE", "Backoff", "SiteHealth", "SiteKey"]
