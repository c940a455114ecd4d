"""State store, Sync Queue side: the filtered, sorted, paged list of a project's representations
with their state on a pair of sites, project activity counts, in-flight lookups and the event
history page. Read-only.

The list is driven by ``representations`` (filters and sorts on its columns use its indexes) and
joins the two sites' rows of ``site_states`` by primary key, so no request aggregates replicas:
at 100,000 representations and a million replicas a page costs one pass over the project's
representations at worst (see ``benchmarks/api_scale.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sitesync.state import schema as s
from sitesync.state.base import StoreBase, chunked
from sitesync.state.records import EventRow
from sitesync.state.summaries import project_representations

# Statuses of a representation on a site, in the order that needs attention first.
SITE_STATUSES = (
    "lost",
    "failed",
    "no_source",
    "removing",
    "in_progress",
    "queued",
    "paused",
    "partial",
    "present",
    "none",
)
_RANK = {status: i for i, status in enumerate(SITE_STATUSES)}
SORT_KEYS = (
    "folder",
    "product",
    "version",
    "name",
    "files",
    "size",
    "updated",
    "active_status",
    "active_progress",
    "active_updated",
    "remote_status",
    "remote_progress",
    "remote_updated",
    "priority",
    "status",
    "id",
)
_STATE_COLUMNS = (
    "status",
    "files_present",
    "files_queued",
    "files_in_progress",
    "files_failed",
    "files_removing",
    "files_missing",
    "files_no_source",
    "paused",
    "bytes_present",
    "bytes_in_flight",
    "progress",
    "priority",
    "attempts",
    "last_error",
    "updated_at",
)


@dataclass(frozen=True)
class QueueFilter:
    """What the Sync Queue shows. Text matches are case-insensitive substrings; ``text`` words must
    each match the folder, product or name; status tuples accept any of ``SITE_STATUSES``."""

    text: str | None = None
    folder: str | None = None
    product: str | None = None
    name: str | None = None
    version: int | None = None
    active_status: tuple[str, ...] = ()
    remote_status: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    representation_ids: tuple[int, ...] = ()


@dataclass
class QueuePage:
    total: int
    rows: list[dict[str, Any]] = field(default_factory=list)  # representation columns + "active"/"remote"


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_text(r: Any) -> sa.ColumnElement[str]:
    """``lower(folder || ' ' || product || ' ' || name)``: what a Sync Queue text word must be in,
    on PostgreSQL, spelled exactly as ``ix_representations_text_trgm`` indexes it."""
    space = sa.literal_column("' '", sa.Text)
    return sa.func.lower(r.c.folder + space + r.c.product + space + r.c.name, type_=sa.Text)


def _rank(state: Any) -> sa.ColumnElement[int]:
    """A site's status as its attention rank; no summary row means ``none``."""
    return sa.case(
        *((state.c.status == status, rank) for status, rank in _RANK.items() if status != "none"),
        else_=_RANK["none"],
    )


def _with_status(project_id: int, table: Any, site: str | None, statuses: Sequence[str]) -> sa.ColumnElement[bool]:
    """Representations whose row in ``table`` (on ``site``) has one of ``statuses``; ``none``
    means no row. Written as ``id [NOT] IN (subquery)``: the subquery reads the summary index
    and every database then starts from the shorter side, with or without statistics."""
    r = s.representations
    base = [table.c.project_id == project_id]
    if site is not None:
        base.append(table.c.site == site)
    named = [x for x in statuses if x != "none"]
    # "paused" means paused on the site, whatever its files' states (a paused representation that
    # is present, failed or lost is still paused)
    matches = sa.or_(table.c.status.in_(named), table.c.paused) if "paused" in named else table.c.status.in_(named)
    if "none" not in statuses:
        return r.c.id.in_(sa.select(table.c.representation_id).where(*base, matches))
    others = [*base, sa.not_(matches)] if named else base
    return r.c.id.not_in(sa.select(table.c.representation_id).where(*others))


def event_filters(
    project_id: int | None, representation_id: int | None, kinds: Sequence[str] | None, site: str | None
) -> list[sa.ColumnElement[bool]]:
    """The conditions of an event-history query (a site matches as target or as source)."""
    e = s.events
    cond: list[sa.ColumnElement[bool]] = []
    if project_id is not None:
        cond.append(e.c.project_id == project_id)
    if representation_id is not None:
        cond.append(e.c.representation_id == representation_id)
    if kinds:
        cond.append(e.c.kind.in_(list(kinds)))
    if site is not None:
        cond.append(sa.or_(e.c.site == site, e.c.source_site == site))
    return cond


class ListingMixin(StoreBase):
    def queue_page(
        self,
        project_id: int,
        active_site: str,
        remote_site: str,
        flt: QueueFilter,
        *,
        sort: str = "folder",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> QueuePage:
        """One page of the Sync Queue: the total matching ``flt`` and the page's rows.

        Sorting on a site column puts representations with nothing on that site ("none") last in
        either direction. Without filters on representation columns such a sort reads the
        site's summary rows in the database's order and only then the representations without
        one (``_state_driven_ids``); otherwise the project's matching representations are read
        and joined to the summary rows the filter and sort need, one primary-key probe each."""
        r = s.representations
        sides = {
            "a": s.site_states.alias("a"),
            "b": s.site_states.alias("b"),
            "o": s.representation_states.alias("o"),
        }
        on_site = {"a": active_site, "b": remote_site, "o": None}
        contains = self._contains

        rep_cond: list[sa.ColumnElement[bool]] = [r.c.project_id == project_id]
        for word in (flt.text or "").split():
            if self.is_postgres:
                # one lower() per row and word instead of three; a word has no spaces, so it cannot
                # match across the separators. The expression is the one the trigram index holds
                # (migration 0006), so PostgreSQL reads the index instead of every representation.
                rep_cond.append(search_text(r).like(_like(word.lower()), escape="\\"))
            else:
                rep_cond.append(
                    sa.or_(contains(r.c.folder, word), contains(r.c.product, word), contains(r.c.name, word))
                )
        for rep_column, value in ((r.c.folder, flt.folder), (r.c.product, flt.product), (r.c.name, flt.name)):
            if value:
                rep_cond.append(contains(rep_column, value))
        if flt.version is not None:
            rep_cond.append(r.c.version == flt.version)
        if flt.representation_ids:
            rep_cond.append(r.c.id.in_(list(flt.representation_ids)))
        statuses = {"a": flt.active_status, "b": flt.remote_status, "o": flt.status}
        filtered_sides = {side for side, wanted in statuses.items() if wanted}

        rep_keys: dict[str, list[sa.ColumnElement[Any]]] = {
            "folder": [r.c.folder, r.c.product, r.c.version, r.c.name],
            "product": [r.c.product, r.c.id],
            "version": [r.c.version, r.c.id],
            "name": [r.c.name, r.c.id],
            "files": [r.c.file_count, r.c.id],
            "size": [r.c.total_size, r.c.id],
            "updated": [r.c.updated_at, r.c.id],
            "id": [r.c.id],
        }
        state_keys: dict[str, tuple[str, str]] = {
            "active_status": ("a", "status"),
            "active_progress": ("a", "progress"),
            "active_updated": ("a", "updated_at"),
            "remote_status": ("b", "status"),
            "remote_progress": ("b", "progress"),
            "remote_updated": ("b", "updated_at"),
            "status": ("o", "status"),
            "priority": ("o", "priority"),
        }

        def direction(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
            return column.desc() if descending else column.asc()

        def state_key(side: str, column: str) -> sa.ColumnElement[Any]:
            table = sides[side]
            return _rank(table) if column == "status" else table.c[column]

        def joined(wanted: set[str]) -> Any:
            source: Any = r
            for side in sorted(wanted):
                table = sides[side]
                on = table.c.representation_id == r.c.id
                if on_site[side] is not None:
                    on = sa.and_(on, table.c.site == on_site[side])
                source = source.outerjoin(table, on)
            return source

        status_cond = [
            _with_status(project_id, sides[side], on_site[side], statuses[side]) for side in sorted(filtered_sides)
        ]
        # nothing filtered: the total is the project's count of representations (a counter)
        everything = project_id if len(rep_cond) == 1 and not status_cond else None
        with self._read() as conn:
            if self.is_postgres:
                # psycopg prepares a statement after a few runs, and a generic plan cannot see how
                # selective a search pattern or status is; plan each page for its own values
                conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
            if sort in state_keys:
                side, column = state_keys[sort]
                table = sides[side]
                # the status groups are read in index order; "paused" also matches other statuses
                status_only = filtered_sides == {side} and column == "status" and "paused" not in statuses[side]
                if len(rep_cond) == 1 and (not filtered_sides or status_only):
                    total, ids = self._state_driven_ids(
                        conn,
                        project_id,
                        table,
                        on_site[side],
                        statuses[side],
                        column,
                        descending,
                        offset,
                        limit,
                    )
                else:
                    none_last = sa.case((table.c.representation_id.is_(None), 1), else_=0)
                    order = [none_last, direction(state_key(side, column)), direction(r.c.id)]
                    total, ids = self._rep_driven_ids(
                        conn, joined({side}), rep_cond + status_cond, order, offset, limit, everything
                    )
            else:
                order = [direction(k) for k in rep_keys[sort]]
                total, ids = self._rep_driven_ids(conn, r, rep_cond + status_cond, order, offset, limit, everything)
            rows = self._page_rows(conn, ids, sides, joined)
        return QueuePage(total, rows)

    @staticmethod
    def _rep_driven_ids(
        conn: Connection,
        source: Any,
        cond: list[Any],
        order: list[Any],
        offset: int,
        limit: int,
        everything: int | None = None,
    ) -> tuple[int, list[int]]:
        """The page first: a page that is not full tells the total too, which saves the second
        pass of a selective filter (the usual quick search); with nothing filtered (``everything``
        is the project id) the total is the project's counter; otherwise count."""
        r = s.representations
        pick = sa.select(r.c.id).select_from(source).where(*cond).order_by(*order).limit(limit).offset(offset)
        ids = list(conn.execute(pick).scalars())
        if ids and len(ids) < limit:
            return offset + len(ids), ids
        if not ids and offset == 0:
            return 0, ids
        if everything is not None:
            return project_representations(conn, everything), ids
        return int(conn.execute(sa.select(sa.func.count()).select_from(r).where(*cond)).scalar_one()), ids

    @staticmethod
    def _state_driven_ids(
        conn: Connection,
        project_id: int,
        table: Any,
        site: str | None,
        statuses: Sequence[str],
        column: str,
        descending: bool,
        offset: int,
        limit: int,
    ) -> tuple[int, list[int]]:
        """Sort on one summary column with no representation filter, every step read in index
        order: by status, the groups in attention order (each by id); by a value, the summary
        rows ordered by it; then the representations without a summary row there, by id."""
        r = s.representations
        base = [table.c.project_id == project_id]
        if site is not None:
            base.append(table.c.site == site)
        rep_id = table.c.representation_id
        by_id = rep_id.desc() if descending else rep_id.asc()
        # (rows in the group, query for the group's ids in order)
        groups: list[tuple[int, sa.Select[Any]]] = []
        if column == "status":
            counts = {
                row.status: int(row.n)
                for row in conn.execute(
                    sa.select(table.c.status, sa.func.count().label("n")).where(*base).group_by(table.c.status)
                )
            }
            order = [x for x in SITE_STATUSES if x != "none"]
            for status in reversed(order) if descending else order:
                if counts.get(status) and (not statuses or status in statuses):
                    groups.append(
                        (counts[status], sa.select(rep_id).where(*base, table.c.status == status).order_by(by_id))
                    )
            stated = sum(counts.values())
        else:
            value = table.c[column]
            stated = int(conn.execute(sa.select(sa.func.count()).select_from(table).where(*base)).scalar_one())
            groups.append(
                (stated, sa.select(rep_id).where(*base).order_by(value.desc() if descending else value.asc(), by_id))
            )
        if not statuses or "none" in statuses:
            without = project_representations(conn, project_id) - stated
            if without > 0:
                stated_ids = sa.select(rep_id).where(*base)
                groups.append(
                    (
                        without,
                        sa.select(r.c.id)
                        .where(r.c.project_id == project_id, r.c.id.not_in(stated_ids))
                        .order_by(r.c.id.desc() if descending else r.c.id.asc()),
                    )
                )
        total = sum(n for n, _q in groups)
        ids: list[int] = []
        skip = offset
        for n, query in groups:
            if len(ids) >= limit:
                break
            if skip >= n:
                skip -= n
                continue
            ids += list(conn.execute(query.limit(limit - len(ids)).offset(skip)).scalars())
            skip = 0
        return total, ids

    @staticmethod
    def _page_rows(conn: Connection, ids: list[int], sides: dict[str, Any], joined: Any) -> list[dict[str, Any]]:
        if not ids:
            return []
        r, a, b, o = s.representations, sides["a"], sides["b"], sides["o"]
        rows = conn.execute(
            sa.select(
                r,
                *(a.c[c].label(f"a_{c}") for c in _STATE_COLUMNS),
                a.c.representation_id.label("a_rep"),
                *(b.c[c].label(f"b_{c}") for c in _STATE_COLUMNS),
                b.c.representation_id.label("b_rep"),
                o.c.status.label("o_status"),
                o.c.status_site.label("o_site"),
                o.c.priority.label("o_priority"),
            )
            .select_from(joined({"a", "b", "o"}))
            .where(r.c.id.in_(ids))
        ).all()
        by_id = {}
        for row in rows:
            m = row._mapping
            item = {c.name: m[c.name] for c in r.columns}
            item["active"] = {c: m[f"a_{c}"] for c in _STATE_COLUMNS} if m["a_rep"] is not None else None
            item["remote"] = {c: m[f"b_{c}"] for c in _STATE_COLUMNS} if m["b_rep"] is not None else None
            item["overall_status"] = m["o_status"] or "none"
            item["overall_site"] = m["o_site"]
            item["overall_priority"] = m["o_priority"]
            by_id[item["id"]] = item
        return [by_id[i] for i in ids if i in by_id]

    def _contains(self, column: sa.ColumnElement[Any], value: str) -> sa.ColumnElement[bool]:
        """Case-insensitive substring match. SQLite's LIKE already ignores ASCII case (and
        ``lower()`` on every row would double the cost of a scan); on PostgreSQL ``lower() LIKE``
        scans two to three times faster than ILIKE."""
        if self.is_postgres:
            return sa.func.lower(column).like(_like(value.lower()), escape="\\")
        return column.like(_like(value), escape="\\")

    def site_states_of(self, rep_id: int) -> dict[str, dict[str, Any]]:
        """Every site's summary of one representation."""
        t = s.site_states
        with self._read() as conn:
            rows = conn.execute(sa.select(t).where(t.c.representation_id == rep_id)).all()
        return {row.site: {c: row._mapping[c] for c in _STATE_COLUMNS} for row in rows}

    def project_activity(self) -> dict[int, dict[str, int]]:
        """project id -> overall status -> number of representations in it (``present`` left out:
        the dashboard shows what moves, waits or failed)."""
        t = s.representation_states
        out: dict[int, dict[str, int]] = {}
        q = (
            sa.select(t.c.project_id, t.c.status, sa.func.count().label("n"))
            .where(t.c.status != "present")  # every other state, a newly added one included
            .group_by(t.c.project_id, t.c.status)
        )
        with self._read() as conn:
            for row in conn.execute(q):
                out.setdefault(row.project_id, {})[row.status] = int(row.n)
        return out

    def pause_rows(self) -> list[dict[str, Any]]:
        """Every pause above representation level, with who paused it and when."""
        t = s.pauses
        with self._read() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.paused_at)).all()
        return [dict(row._mapping) for row in rows]

    def optimize(self) -> None:
        """Refresh SQLite's planner statistics (sampled, so it takes milliseconds at any size): the
        Sync Queue's filters need them to start from the selective side. PostgreSQL's autovacuum
        keeps its own statistics."""
        if self.is_postgres:
            return
        with self._write() as conn:
            conn.exec_driver_sql("PRAGMA analysis_limit=1000")
            conn.exec_driver_sql("ANALYZE")

    def replica_owners(self, replica_ids: Sequence[int]) -> dict[int, tuple[int, str, int]]:
        """replica id -> (representation id, site, file id), for live progress of running transfers."""
        r = s.replicas
        out: dict[int, tuple[int, str, int]] = {}
        with self._read() as conn:
            for part in chunked(list(replica_ids)):
                for row in conn.execute(
                    sa.select(r.c.id, r.c.representation_id, r.c.site, r.c.file_id).where(r.c.id.in_(part))
                ):
                    out[row.id] = (row.representation_id, row.site, row.file_id)
        return out

    def change_marker(self) -> tuple[int, int]:
        """(latest event id, settings version): both grow with every recorded change."""
        with self._read() as conn:
            event = conn.execute(sa.select(sa.func.coalesce(sa.func.max(s.events.c.id), 0))).scalar_one()
            version = conn.execute(sa.select(sa.func.coalesce(sa.func.max(s.settings.c.version), 0))).scalar_one()
        return int(event), int(version)

    def events_page(
        self,
        *,
        project_id: int | None = None,
        representation_id: int | None = None,
        kinds: Sequence[str] = (),
        site: str | None = None,
        text: str | None = None,
        before_id: int | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[EventRow]:
        """Newest first; page back with ``before_id``, poll for new ones with ``after_id``."""
        e = s.events
        q = sa.select(e).where(*event_filters(project_id, representation_id, kinds, site))
        if text:
            q = q.where(sa.or_(self._contains(e.c.message, text), self._contains(e.c.actor, text)))
        if before_id is not None:
            q = q.where(e.c.id < before_id)
        if after_id is not None:
            q = q.where(e.c.id > after_id)
        q = q.order_by(e.c.id.desc()).limit(limit)
        with self._read() as conn:
            return [EventRow(**row._mapping) for row in conn.execute(q)]
