"""State store, links side: a representation references others (a workfile and the caches,
textures and renders it loads). Links are replaced as a whole at publish; the closure of a
representation (what ``download --with-links`` and ``wait --with-links`` need) is walked breadth
first over ``links`` (primary key, then ``ix_links_linked_id`` for the reverse direction)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import sqlalchemy as sa

from sitesync.state import schema as s
from sitesync.state.base import chunked, event
from sitesync.state.catalog import CatalogMixin

MAX_LINK_CLOSURE = 10_000


class LinksMixin(CatalogMixin):
    def set_links(self, rep_id: int, linked_ids: Sequence[int], actor: str) -> None:
        """Replace the representations ``rep_id`` references."""
        t = s.links
        now = time.time()
        with self._write() as conn:
            rep = self._require_rep(conn, rep_id)
            conn.execute(t.delete().where(t.c.representation_id == rep_id))
            ids = [i for i in dict.fromkeys(linked_ids) if i != rep_id]
            if ids:
                conn.execute(
                    t.insert(),
                    [
                        {"representation_id": rep_id, "linked_id": i, "created_at": now, "created_by": actor}
                        for i in ids
                    ],
                )
            self._events(
                conn,
                [
                    event(
                        "links",
                        actor,
                        project_id=rep.project_id,
                        representation_id=rep_id,
                        message="links: " + (", ".join(str(i) for i in ids) or "none"),
                    )
                ],
            )

    def links_of(self, rep_id: int) -> tuple[list[int], list[int]]:
        """(what ``rep_id`` references, what references ``rep_id``)."""
        t = s.links
        with self._read() as conn:
            out = conn.execute(
                sa.select(t.c.linked_id).where(t.c.representation_id == rep_id).order_by(t.c.linked_id)
            ).scalars()
            outgoing = list(out)
            incoming = list(
                conn.execute(
                    sa.select(t.c.representation_id).where(t.c.linked_id == rep_id).order_by(t.c.representation_id)
                ).scalars()
            )
        return outgoing, incoming

    def link_closure(self, rep_id: int, limit: int = MAX_LINK_CLOSURE) -> list[int]:
        """``rep_id`` and every representation reachable through links, breadth first; cycles are
        harmless (each representation is visited once)."""
        t = s.links
        seen = {rep_id}
        order = [rep_id]
        frontier = [rep_id]
        with self._read() as conn:
            while frontier and len(order) < limit:
                found: list[int] = []
                for part in chunked(frontier):
                    found.extend(
                        conn.execute(
                            sa.select(t.c.linked_id)
                            .where(t.c.representation_id.in_(part))
                            .order_by(t.c.representation_id, t.c.linked_id)
                        ).scalars()
                    )
                frontier = []
                for i in found:
                    if i not in seen:
                        seen.add(i)
                        order.append(i)
                        frontier.append(i)
        return order[:limit]


__all__ = ["MAX_LINK_CLOSURE", "LinksMixin"]
