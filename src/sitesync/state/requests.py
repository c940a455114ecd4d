"""State store: what users and workflows ask of a representation on a site: want it there
(download/upload), re-sync (reset), its priority and its pause."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from sitesync.errors import NotFoundError
from sitesync.state import schema as s
from sitesync.state.base import event
from sitesync.state.catalog import CatalogMixin
from sitesync.state.summaries import refresh_pairs, refresh_representations


class RequestsMixin(CatalogMixin):
    def want(
        self,
        rep_id: int,
        site: str,
        actor: str,
        *,
        priority: int | None = None,
        file_ids: Sequence[int] | None = None,
        alternatives: Sequence[str] = (),
    ) -> dict[str, int]:
        """Ask for the representation (or some of its files) on ``site``: queue what is missing,
        give failed files a fresh set of attempts; what an alternative of ``site`` holds is
        recorded present without a copy. Returns counts by outcome."""
        r = s.replicas
        now = time.time()
        with self._write() as conn:
            rep = conn.execute(
                sa.select(s.representations.c.project_id).where(s.representations.c.id == rep_id)
            ).first()
            if rep is None:
                raise NotFoundError(f"unknown representation {rep_id}; see `sitesync status PROJECT`")
            self._lock_replicas(conn, rep_id)
            prio, paused = self._ensure_rep_site(conn, rep_id, site, actor, now, priority)
            queued = self._queue_missing(conn, rep_id, rep.project_id, site, prio, paused, now, file_ids)
            cond = [r.c.representation_id == rep_id, r.c.site == site, r.c.status == s.FAILED]
            if file_ids is not None:
                cond.append(r.c.file_id.in_(list(file_ids)))
            retried = conn.execute(r.update().where(*cond).values(**self._requeue_values(now))).rowcount or 0
            self._adopt_alternatives(conn, rep_id, site, alternatives, now)
            settled = self._settle_sources(conn, None, now, rep_ids=[rep_id])
            counts = {
                row.status: row.n
                for row in conn.execute(
                    sa.select(r.c.status, sa.func.count().label("n"))
                    .where(r.c.representation_id == rep_id, r.c.site == site)
                    .group_by(r.c.status)
                )
            }
            refresh_pairs(conn, {(rep_id, x) for x in (site, *alternatives)} | settled)
            self._events(
                conn,
                [
                    event(
                        "request",
                        actor,
                        project_id=rep.project_id,
                        representation_id=rep_id,
                        site=site,
                        message=f"wanted on {site}: {queued} queued, {retried} failed retried",
                    )
                ],
            )
        return {"queued": queued, "retried": retried, **{f"now_{k}": v for k, v in counts.items()}}

    def reset(
        self,
        rep_id: int,
        sites: Sequence[str],
        actor: str,
        *,
        include_present: bool = False,
        file_id: int | None = None,
    ) -> dict[str, int]:
        """Re-sync: clear attempts and errors of the representation's files on ``sites`` and queue
        them again. With ``include_present`` verified copies are re-copied too, but only where
        another verified copy of the file exists (the last copy is never given up)."""
        r = s.replicas
        now = time.time()
        other = r.alias("other")
        result = {"requeued": 0, "kept_only_copy": 0}
        with self._write() as conn:
            rep = conn.execute(
                sa.select(s.representations.c.project_id).where(s.representations.c.id == rep_id)
            ).first()
            if rep is None:
                raise NotFoundError(f"unknown representation {rep_id}; see `sitesync status PROJECT`")
            self._lock_replicas(conn, rep_id)
            base = [r.c.representation_id == rep_id, r.c.site.in_(list(sites))]
            if file_id is not None:
                base.append(r.c.file_id == file_id)
            result["requeued"] += (
                conn.execute(
                    r.update().where(*base, r.c.status.in_(s.NOT_HELD)).values(**self._requeue_values(now))
                ).rowcount
                or 0
            )
            if include_present:
                has_other = sa.exists().where(
                    other.c.file_id == r.c.file_id, other.c.site != r.c.site, other.c.status == s.PRESENT
                )
                result["requeued"] += (
                    conn.execute(
                        r.update().where(*base, r.c.status == s.PRESENT, has_other).values(**self._requeue_values(now))
                    ).rowcount
                    or 0
                )
                result["kept_only_copy"] = conn.execute(
                    sa.select(sa.func.count()).select_from(r).where(*base, r.c.status == s.PRESENT)
                ).scalar_one()
            settled = self._settle_sources(conn, None, now, rep_ids=[rep_id])
            refresh_pairs(conn, {(rep_id, site) for site in sites} | settled)
            self._events(
                conn,
                [
                    event(
                        "reset",
                        actor,
                        project_id=rep.project_id,
                        representation_id=rep_id,
                        file_id=file_id,
                        site=",".join(sites),
                        message=f"{result['requeued']} files queued again",
                    )
                ],
            )
        return result

    def set_priority(self, rep_id: int, priority: int, actor: str, site: str | None = None) -> int:
        return self._set_on_sites(rep_id, site, actor, {"priority": priority}, "priority", f"priority {priority}")

    def set_representation_paused(self, rep_id: int, paused: bool, actor: str, site: str | None = None) -> int:
        """Pause or resume a representation on one site or on every site it is wanted on. Only the
        pause flag changes: per-file state (attempts, errors, presence) is left exactly as it is."""
        return self._set_on_sites(rep_id, site, actor, {"paused": paused}, "pause" if paused else "resume", None)

    def _set_on_sites(
        self, rep_id: int, site: str | None, actor: str, values: dict[str, Any], kind: str, message: str | None
    ) -> int:
        """Set a representation-per-site field (priority, paused) on one site or every site it is
        wanted on, on the representation_sites rows and on the replicas that carry a copy of it.
        Returns how many sites changed."""
        t, r = s.representation_sites, s.replicas
        with self._write() as conn:
            rep = self._require_rep(conn, rep_id)
            self._lock_replicas(conn, rep_id)
            if site is None and "paused" in values:
                # every site, including those it is requested on later (``_ensure_rep_site``)
                conn.execute(
                    s.representations.update().where(s.representations.c.id == rep_id).values(paused=values["paused"])
                )
            cond_t = [t.c.representation_id == rep_id]
            cond_r = [r.c.representation_id == rep_id]
            if site is not None:
                cond_t.append(t.c.site == site)
                cond_r.append(r.c.site == site)
            sites = sorted(conn.execute(sa.select(t.c.site).where(*cond_t)).scalars())
            n = conn.execute(t.update().where(*cond_t).values(**values)).rowcount or 0
            conn.execute(r.update().where(*cond_r).values(**values))
            if site is None:
                refresh_representations(conn, [rep_id])
            else:
                refresh_pairs(conn, [(rep_id, site)])
            # every site it applied to, as a re-sync records them, so no event lacks its site
            applied = site or ",".join(sites) or None
            row = event(kind, actor, project_id=rep.project_id, representation_id=rep_id, site=applied, message=message)
            self._events(conn, [row])
            return n
