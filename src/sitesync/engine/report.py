"""What one run of a worker did and, for ``sync --once``, what it left undone: the report the CLI
prints and turns into an exit code a farm script can rely on."""

from __future__ import annotations

from dataclasses import dataclass, field

# `sync --once` exit codes by RunReport.result (2 stays bad input; 1 an unexpected crash)
SYNC_EXIT_CODES = {"done": 0, "failed": 3, "pending": 4, "unreachable": 5}


@dataclass
class RunReport:
    """What one run of a worker did, and (``sync --once``) what it left undone."""

    transferred: int = 0
    failed_attempts: int = 0
    failed_files: int = 0  # files whose attempts ran out in this run
    deferred: int = 0  # files put back untouched because a site could not be used
    bytes: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    # at the end of a --once run: sites held back (project, site, why) and what is left in the
    # queues the run served (see StateStore.queue_remaining)
    unreachable: list[tuple[str, str, str]] = field(default_factory=list)
    remaining: dict[str, int] = field(default_factory=dict)

    @property
    def result(self) -> str:
        """``done``: nothing left; ``failed``: files failed for good (a person must look);
        ``unreachable``: a site could not be reached, its work waits; ``pending``: work remains
        (a retry's back-off, leased by another worker, or no reachable copy to read yet)."""
        if self.remaining.get("failed", 0) or self.failed_files:
            return "failed"
        if self.unreachable:
            return "unreachable"
        if any(self.remaining.get(k, 0) for k in ("due", "retry_later", "in_progress")):
            return "pending"
        return "done"

    @property
    def exit_code(self) -> int:
        return SYNC_EXIT_CODES[self.result]


__all__ = ["SYNC_EXIT_CODES", "RunReport"]
