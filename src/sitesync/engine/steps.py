"""The worker's per-loop steps: work that lives outside the engine (preferred content, and whatever
else the client wires up) runs once per turn of the worker loop without the engine importing it.

A *step factory* makes one step for each worker (a step may keep state between turns: cursors,
pacing). The client fills a ``StepRegistry`` (``facade/base.py``: ``Client.worker_steps``) and
hands it to every worker it makes; each turn the worker calls every step's ``run`` with a
``StepContext``, and a step answering True queued work (the worker looks at its queues again).
A step that raises is logged and skipped for that turn: a step never stops the worker.

Registering a step::

    client.worker_steps.register("workfiles", WorkfileLoop.for_worker)
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sitesync.machine_view import MachineView, ProjectView, ProviderPool
    from sitesync.state.store import StateStore


@dataclass(frozen=True)
class StepOwner:
    """The worker a step is made for."""

    store: StateStore
    worker_id: str
    once: bool  # a ``sync --once`` run: a step should not pace itself across turns
    pool: ProviderPool  # the worker's open providers (a step that touches storage uses them)
    # wakes the worker from its idle sleep at once (None: a worker that does not listen, ``--once``);
    # safe to call from any thread (a file-system watcher's)
    wake: Callable[[], None] | None = None


@dataclass(frozen=True)
class StepContext:
    """What the worker knows at the start of a turn."""

    machine: MachineView
    views: Mapping[str, ProjectView]  # project name -> the project as this machine sees it
    project_ids: Mapping[str, int]
    targets: Collection[str] | None  # the sites this worker serves (None: every reachable site)


class WorkerStep(Protocol):
    def run(self, ctx: StepContext) -> bool:
        """One turn's work; True when it queued work."""
        ...


StepFactory = Callable[[StepOwner], WorkerStep]


class StepRegistry:
    """Named step factories, run in the order they were first registered."""

    def __init__(self) -> None:
        self._factories: dict[str, StepFactory] = {}

    def register(self, name: str, factory: StepFactory) -> None:
        """Add a step (registering a name again replaces its factory, keeping its place)."""
        self._factories[name] = factory

    def unregister(self, name: str) -> None:
        self._factories.pop(name, None)

    def names(self) -> list[str]:
        return list(self._factories)

    def build(self, owner: StepOwner) -> dict[str, WorkerStep]:
        """One fresh step per factory, for one worker."""
        return {name: factory(owner) for name, factory in self._factories.items()}


__all__ = ["StepContext", "StepFactory", "StepOwner", "StepRegistry", "WorkerStep"]
