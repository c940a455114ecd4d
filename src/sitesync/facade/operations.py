"""Client: studio operations — bandwidth limits in force and current rates, the dry-run plan of
what the worker would do now, and mapping paths between sites (render farms, DCCs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sitesync.engine.bandwidth import BandwidthLimits, MachineBandwidth
from sitesync.errors import InvalidInputError, NotFoundError, UserError
from sitesync.facade.workflows import WorkflowsFacade
from sitesync.machine_view import MachineView
from sitesync.settings.models import PLATFORMS
from sitesync.workflows import wait as wait_flow

PLAN_LIMIT_MAX = 10_000


class OperationsFacade(WorkflowsFacade):
    def bandwidth(self) -> dict[str, Any]:
        """This machine's bandwidth limits in force now (its own and each site's, from their
        timetables) and the current rate of every worker process on this machine through each."""
        view = self.view()
        limits = BandwidthLimits.from_settings(view.local.bandwidth, view.system)
        machine = MachineBandwidth(self.paths.bandwidth_dir, lambda: limits, self.site_id)
        try:
            return {"site_id": self.site_id, **machine.status()}
        finally:
            machine.close()

    def plan(
        self,
        project: str | None = None,
        targets: Sequence[str] | None = None,
        *,
        limit: int = 50,
        unavailable: Mapping[tuple[str, str], str] | None = None,
    ) -> dict[str, Any]:
        """What this machine's worker would do now, changing nothing: per queue (project and
        target site, in the worker's order) the files it would transfer, in claim order (priority,
        then age), with source, size and totals, at most ``limit`` listed per queue; and every
        file it would not take, grouped by why (paused, disabled, another machine's site, backed
        off, no source, waiting for a retry, failed, in progress).

        ``unavailable``: (project, site) -> reason, what a running worker knows (the API passes its
        in-process worker's); by default, what this machine's workers last recorded."""
        from sitesync.workflows import plan as plan_flow  # imported on use: other commands start faster

        if not isinstance(limit, int) or not 0 <= limit <= PLAN_LIMIT_MAX:
            raise InvalidInputError(f"invalid limit {limit!r}: use a whole number from 0 to {PLAN_LIMIT_MAX}")
        view = self.view()
        projects = [self.store.project(project)] if project is not None else self.store.projects()
        wanted = None
        if targets:
            wanted = [view.normalize_site(t) for t in targets]
            known = {n for p in projects for n in self._sites_known(view, p.name)}
            unknown = [t for t in wanted if t not in known]
            if unknown:
                raise InvalidInputError(f"unknown site {unknown[0]!r}; see `sitesync site list`")
        if unavailable is None:
            unavailable = plan_flow.recorded_unavailable(self.store, self.site_id, [p.name for p in projects])
        return plan_flow.build_plan(self.store, view, projects, targets=wanted, unavailable=unavailable, limit=limit)

    @staticmethod
    def _sites_known(view: Any, project: str) -> set[str]:
        try:
            return set(view.project(project).sites)
        except Exception:  # a project with broken settings knows no sites; the plan says why
            return set()

    def map_path(
        self,
        path: str,
        to: str | None = None,
        *,
        project: str | None = None,
        platform: str | None = None,
    ) -> dict[str, Any]:
        """The same file on another site: ``path`` lies under a root of any site (this machine's
        local root, the studio share, another site's root, on any platform's roots) or is a
        catalog path ``{root[NAME]}/...``; the answer is where that file lives on site ``to``
        (default: this machine's active site) as seen on ``platform`` (default: this machine's).
        Also says whether the catalog has the file and its status on ``to``. A path outside
        every root is refused."""
        from sitesync.pathmap import locate  # imported on use: other commands start faster

        text = str(path).strip()
        if not text or "\x00" in text:
            raise InvalidInputError("give a path to map, e.g. /mnt/studio/show/sh010/scene.ma")
        if platform is not None and platform not in PLATFORMS:
            raise InvalidInputError(f"invalid platform {platform!r}: use {', '.join(PLATFORMS)}")
        view = self.view()
        names = [self.store.project(project).name] if project is not None else [p.name for p in self.store.projects()]
        found = locate(text, view, names)
        if not found:
            raise InvalidInputError(
                f"{text} is not under a root of any site"
                + (f" of project {project}" if project else "")
                + "; give a path below a site's root (`sitesync site list --project P` shows them) "
                "or a catalog path {root[NAME]}/..."
            )
        target_view = (
            view
            if platform in (None, view.platform)
            else MachineView(view.docs, view.local, view.site_id, view.paths, platform)
        )
        longest = len(found[0].base)
        answers: dict[str, tuple[Any, str, str]] = {}  # project -> (located, target site, mapped)
        problems = []
        for loc in (x for x in found if len(x.base) == longest):
            if loc.project in answers:
                continue
            pv = target_view.project(loc.project)
            target = pv.active_site if to is None else view.normalize_site(to)
            try:
                answers[loc.project] = (loc, target, pv.site(target).resolve(loc.template))
            except UserError as exc:  # an unknown target site, or a root the target lacks
                problems.append(str(exc))
        if not answers:
            raise InvalidInputError(problems[0] if problems else f"cannot map {text}")
        catalog = {self.store.representation(f.representation_id).project: f for f in self._files_at(found)}
        if len({mapped for _l, _t, mapped in answers.values()}) > 1:
            held = [name for name in answers if name in catalog]
            if len(held) != 1:
                raise InvalidInputError(
                    f"{text} is under the roots of projects {', '.join(sorted(answers))}, which map it to "
                    "different places; pass --project"
                )
            answers = {held[0]: answers[held[0]]}
        name = next((n for n in answers if n in catalog), next(iter(answers)))
        loc, target, mapped = answers[name]
        file = catalog.get(name)
        status = None
        if file is not None:
            replicas = self.store.replicas_for_files([file.id]).get(file.id, [])
            status = next((r.status for r in replicas if r.site == target), "none")
        return {
            "path": text,
            "project": name,
            "from_site": loc.site or None,
            "from_platform": loc.platform if loc.site else None,
            "template": loc.template,
            "to_site": target,
            "platform": target_view.platform,
            "mapped": mapped,
            "file": None
            if file is None
            else {"representation_id": file.representation_id, "file_id": file.id, "status_on_target": status},
        }

    def _files_at(self, found: Sequence[Any]) -> list[Any]:
        out = []
        for template in dict.fromkeys(x.template for x in found):
            out.extend(self.store.files_by_path(template))
        return out

    def ensure_path(
        self,
        path: str,
        to: str | None = None,
        *,
        project: str | None = None,
        platform: str | None = None,
        timeout: float | None = None,
        with_links: bool = False,
        poll_interval: float = 1.0,
        progress: wait_flow.WaitProgressFn | None = None,
    ) -> dict[str, Any]:
        """``map_path``, then wait until the file is a verified copy on the target site (a farm
        job's pre-load step): asks for its representation there at the wait priority and waits
        like ``wait`` (with ``with_links``, for what it references too). Returns the mapping with
        the wait's ``status`` (present / failed / timeout) and ``exit_code``."""
        mapping = self.map_path(path, to, project=project, platform=platform)
        if mapping["file"] is None:
            raise NotFoundError(
                f"no published file is at {mapping['template']} in project {mapping['project']}, so there is "
                f"nothing to wait for (it would be at {mapping['mapped']}); publish it, or map without --ensure"
            )
        waited = self.wait(
            mapping["file"]["representation_id"],
            mapping["to_site"],
            timeout=timeout,
            with_links=with_links,
            poll_interval=poll_interval,
            progress=progress,
        )
        return {**mapping, "wait": waited, "status": waited["status"], "exit_code": waited["exit_code"]}
