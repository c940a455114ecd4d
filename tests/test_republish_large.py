"""Republishing a representation of thousands of files (issue 16): the catalog records exactly the
new content, and the work is a fixed number of statements, whatever the number of files.

A republish once rebuilt a set of the changed files for every file and ran one UPDATE per
changed file (quadratic: 400 files/s at 10,000 files). Its speed is measured in
``benchmarks/startup.py``; here the outcome is checked file by file, and the statement count
stands guard against per-file work coming back (no time is asserted).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from sitesync.state.records import FileFacts, PublishResult, RepresentationKey
from tests.conftest import SITE_ID, Studio

KEY = RepresentationKey("seq01/sh010", "renderMain", 1, "exr")


def frame(i: int) -> str:
    return f"{{root[work]}}/show/seq01/sh010/publish/renderMain/v001/exr/f.{i:05d}.exr"


def facts(indices: range | list[int], generation: int, changed: set[int] | None = None) -> list[FileFacts]:
    """Files with content of ``generation`` (``changed`` ones only, when given; the others keep 0)."""
    out = []
    for i in indices:
        gen = generation if changed is None or i in changed else 0
        out.append(FileFacts(frame(i), 4096 + gen, "xxh3_128", f"{gen:04x}{i:028x}"))
    return out


def publish(studio: Studio, files: list[FileFacts], present_on: str, queue_on: list[str]) -> PublishResult:
    store = studio.client.store
    return store.publish(store.project("show").id, KEY, files, present_on, queue_on, "tester")


@contextmanager
def counted_statements(studio: Studio) -> Iterator[list[str]]:
    """The SQL statements the store sends meanwhile (an executemany counts once)."""
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    engine = studio.client.store.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def test_republish_of_thousands_of_files_records_the_new_content_file_by_file(studio: Studio) -> None:
    n = 2_500  # more than the 2,000 ids the store once sent per statement
    first = publish(studio, facts(range(n), 0), "studio", [SITE_ID])
    rep = first.representation_id
    changed = set(range(0, n, 3))
    dropped = set(range(n - 50, n))
    kept = [i for i in range(n) if i not in dropped]
    added = list(range(n, n + 100))
    # this machine publishes the new content: the studio holds the old one of the changed files
    again = publish(studio, facts(kept, 1, changed) + facts(added, 1), SITE_ID, [])
    changed_kept = changed - dropped

    assert again.representation_id == rep and not again.created
    assert again.changed_files == len(changed_kept) + len(added)
    assert again.requeued_sites == ("studio",)
    rows = {f.path: f for f in studio.client.store.files_of(rep)}
    assert len(rows) == len(kept) + len(added)
    for i in [*kept, *added]:
        gen = 1 if i in changed_kept or i >= n else 0
        assert (rows[frame(i)].size, rows[frame(i)].hash) == (4096 + gen, f"{gen:04x}{i:028x}"), i
    assert not any(frame(i) in rows for i in dropped)

    detail = studio.client.representation_detail(rep)
    states = {f["path"].rsplit("/", 1)[1]: {r["site"]: r["status"] for r in f["replicas"]} for f in detail["files"]}
    assert len(states) == len(rows)
    for i in [*kept, *added]:
        on_studio = "queued" if i in changed_kept or i >= n else "present"
        assert states[f"f.{i:05d}.exr"] == {SITE_ID: "present", "studio": on_studio}, i

    # the same content once more: nothing changes, nothing is queued again
    same = publish(studio, facts(kept, 1, changed) + facts(added, 1), SITE_ID, [])
    assert same.changed_files == 0 and same.requeued_sites == ()


def test_a_republish_runs_the_same_statements_for_forty_files_as_for_three_thousand(studio: Studio) -> None:
    counts = {}
    for n, folder in ((40, "small"), (3_000, "big")):
        key = RepresentationKey(folder, "renderMain", 1, "exr")
        store = studio.client.store
        project_id = store.project("show").id
        store.publish(project_id, key, facts(range(n), 0), "studio", [SITE_ID], "tester")
        with counted_statements(studio) as seen:
            result = store.publish(project_id, key, facts(range(n), 1), "studio", [SITE_ID], "tester")
        assert result.changed_files == n
        counts[n] = len(seen)
    assert counts[40] == counts[3_000], f"statements per republish grow with its files: {counts}"
