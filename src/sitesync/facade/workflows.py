"""Client: studio workflows (links, validate, fsck, preferred content, wait, clear); logic in workflows/."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sitesync.errors import (
    InvalidInputError,
    NotFoundError,
    StorageError,
)
from sitesync.facade.common import (
    _rep_dict,
    _rep_id,
)
from sitesync.facade.requests import RequestsFacade
from sitesync.workflows import clear as clear_flow
from sitesync.workflows import wait as wait_flow
from sitesync.workflows.checks_common import ProgressFn
from sitesync.workflows.fsck import fsck_site
from sitesync.workflows.validate import validate_site


class WorkflowsFacade(RequestsFacade):
    def _check_links(self, project_id: int, key: Any, links: Sequence[int] | None) -> list[int] | None:
        if links is None:
            return None
        ids = list(dict.fromkeys(_rep_id(x) for x in links))
        found = self.store.representations_by_ids(ids)
        unknown = [i for i in ids if i not in found]
        if unknown:
            raise NotFoundError(f"unknown representation {unknown[0]} in --link; nothing was published")
        me = self.store.find_representation(project_id, key)
        if me is not None and me.id in ids:
            raise InvalidInputError(f"representation {me.id} cannot link to itself; nothing was published")
        return ids

    def links(self, rep_id: int) -> dict[str, Any]:
        """What a representation references (``links``) and what references it (``linked_by``)."""
        rep = self.representation(rep_id)
        outgoing, incoming = self.store.links_of(rep.id)
        reps = self.store.representations_by_ids([*outgoing, *incoming])
        return {
            "links": [_rep_dict(reps[i]) for i in outgoing if i in reps],
            "linked_by": [_rep_dict(reps[i]) for i in incoming if i in reps],
        }

    def validate(
        self, site: str, project: str | None = None, *, progress: ProgressFn | None = None, force: bool = False
    ) -> dict[str, Any]:
        """Register files a site already holds (size + hash checked) and detect the copies it lost.
        Refused on storage not proven to be the site's own (its marker) unless ``force``."""
        result = validate_site(
            self.store, self.view(), self._pool, self.actor, site, project, progress=progress, force=force
        )
        if result["requeued"]:
            self.wake()
        return result

    def fsck(
        self, site: str, project: str | None = None, *, progress: ProgressFn | None = None, force: bool = False
    ) -> dict[str, Any]:
        """Re-hash the verified copies on a site; a bad copy is re-fetched from a good one.
        Refused on storage not proven to be the site's own (its marker) unless ``force``."""
        result = fsck_site(
            self.store, self.view(), self._pool, self.actor, site, project, progress=progress, force=force
        )
        if result["requeued"]:
            self.wake()
        return result

    def preferred_content(self, project: str, site: str | None = None, *, apply: bool = False) -> dict[str, Any]:
        """What a site's preferred-content rule matches in a project now; ``apply`` requests what
        is not wanted there yet (the worker does the same on its own, in the background)."""
        # imported here: the rule language is not needed by the other commands
        from sitesync.workflows import preferred as preferred_flow

        prow = self.store.project(project)
        machine = self.view()
        pv = machine.project(project)
        name = self._target(pv, site, pv.active_site)
        rule = preferred_flow.site_rule(machine, pv, name)
        if rule is None:
            key = "sites.local.wants" if name == self.site_id else f"sites.{name}.wants"
            raise NotFoundError(
                f"site {name!r} has no preferred-content rule in project {project!r}; "
                f"set one with `sitesync settings set --project {project} {key} RULE`"
            )
        if apply and not pv.sync_enabled:
            raise InvalidInputError(f"site sync is off for project {project!r}; nothing was requested")
        found = preferred_flow.preview(
            self.store, prow.id, rule, name, self.actor, pv.site(name).alternatives, apply=apply
        )
        if found["requested"]:
            self.wake()
        reps = self.store.representations_by_ids(found["not_wanted_yet"][:200])
        return {
            "project": project,
            "site": name,
            "rule": rule,
            "matched": len(found["matched"]),
            "not_wanted_yet": len(found["not_wanted_yet"]),
            "requested": len(found["requested"]),
            "representations": [_rep_dict(reps[i]) for i in found["not_wanted_yet"][:200] if i in reps],
        }

    def wait(
        self,
        rep_id: int,
        site: str | None = None,
        *,
        timeout: float | None = None,
        with_links: bool = False,
        poll_interval: float = 1.0,
        progress: wait_flow.WaitProgressFn | None = None,
    ) -> dict[str, Any]:
        """Block until every file of the representation (``with_links``: and of what it
        references) is verified on the site (default: the active site). Asks for what is missing
        at a raised priority first. Returns ``status`` present / failed / timeout and ``exit_code``."""
        if timeout is not None and (not isinstance(timeout, int | float) or timeout < 0):
            raise InvalidInputError(f"invalid timeout {timeout!r}: use a number of seconds, 0 or more")
        if not isinstance(poll_interval, int | float) or poll_interval <= 0:
            raise InvalidInputError(f"invalid poll interval {poll_interval!r}: use a positive number of seconds")
        rep, view = self._rep_view(rep_id)
        target = self._target(view, site, view.active_site)
        members = self._closure(rep, view, target, require_sync=False) if with_links else [(rep, view)]
        ids = [r.id for r, _ in members]
        states = self.store.site_progress(ids, target)
        missing = [(r, v) for r, v in members if not wait_flow.complete(states[r.id])]
        for r, v in missing:
            if not v.sync_enabled:
                self._want(r, v, target, None)  # raises the one-line "sync is off" error, nothing asked yet
        for r, v in missing:
            current = self.store.representation_sites(r.id).get(target, {}).get("priority") or 0
            self._want(r, v, target, max(current, wait_flow.WAIT_PRIORITY))
        return wait_flow.wait_until(
            self.store, ids, target, timeout=timeout, poll_interval=poll_interval, progress=progress
        )

    def clear(self, project: str, site: str | None = None, *, progress: Any | None = None) -> dict[str, Any]:
        """Remove a project's copies from a site (default: this machine's own site) through the
        guarded removal; what ``min_copies`` or a running transfer keeps is reported with why."""
        prow = self.store.project(project)
        view = self.project_view(project)
        target = self._target(view, site, self.site_id)
        spec = view.site(target)
        if not spec.reachable:
            raise InvalidInputError(f"site {target!r} is not reachable from this machine; run clear there")
        try:
            self._pool.get(spec).check()
        except StorageError as exc:
            raise InvalidInputError(f"cannot clear site {target!r}: {exc}; nothing was removed") from None
        removal = self.removal(view, prow.id)
        return clear_flow.clear_site(self.store, prow.id, project, target, removal.remove, progress)
