"""The per-site counters (``site_counts``) behind the project status summary: every state change
keeps them equal to a recount of the summaries (publishes, requests, claims, outcomes, failures,
pauses, removals, lost and no-source files, forgetting a site, concurrent claims on PostgreSQL);
the summary, the metrics and the per-project counts read them; a database upgraded to them gets
them filled; the bulk generator of the scale benchmark writes consistent summaries and counters;
on PostgreSQL the Sync Queue's text filter can use its trigram index."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from sitesync.state import schema as s
from sitesync.state.records import Outcome
from sitesync.state.summaries import drift, project_representations, recount, stored_counts
from tests.apikit import build_catalog
from tests.conftest import SITE_ID, Studio, keep_publishes_local


def _assert_counted(studio: Studio) -> None:
    """The counters equal a recount, and the faces' summaries equal the same recount."""
    store = studio.client.store
    with store.engine.connect() as conn:
        expected, stored = recount(conn), stored_counts(conn)
        problems = drift(conn)  # project_counts too
        reps = conn.execute(sa.select(sa.func.count()).select_from(s.representations)).scalar_one()
    assert stored == expected
    assert problems == []
    with store.engine.connect() as conn:
        assert project_representations(conn, store.project("show").id) == reps
    project_id = store.project("show").id
    mine = {site: counts for (pid, site), counts in expected.items() if pid == project_id}
    summaries = {x.site: x for x in store.project_site_summaries(project_id)}
    assert set(summaries) == set(mine)
    for site, counts in mine.items():
        got = summaries[site]
        files = {status: counts[column] for status, column in store._COUNTS if counts[column]}
        assert got.counts == files, site
        assert (got.bytes_present, got.bytes_total) == (counts["bytes_present"], counts["total_size"]), site
    totals: dict[str, int] = {}
    for counts in mine.values():
        for status, column in store._COUNTS:
            if counts[column]:
                totals[status] = totals.get(status, 0) + counts[column]
    assert store.project_status_counts().get(project_id, {}) == totals


def test_every_state_change_keeps_the_counters_equal_to_a_recount(studio: Studio) -> None:
    c = studio.client
    cat = build_catalog(studio)  # present, queued, failed, paused, in progress, removing
    _assert_counted(studio)
    summaries = {x.site: x for x in c.store.project_site_summaries(c.store.project("show").id)}
    assert {"present", "queued", "failed", "in_progress", "removing"} <= set(summaries[SITE_ID].counts)
    studio.sync()  # outcomes: present and failed
    _assert_counted(studio)
    c.remove(cat.reps["both_a"], SITE_ID)  # a removal: the site's rows of it go
    _assert_counted(studio)
    c.resume(representation=cat.reps["paused"], site=SITE_ID)
    c.set_priority(cat.reps["queued"], 10)
    _assert_counted(studio)
    c.reset(cat.reps["failed"], SITE_ID)
    _assert_counted(studio)


def test_lost_and_no_source_files_are_counted(studio: Studio) -> None:
    c = studio.client
    rep = studio.publish([studio.write("l.bin", b"l" * 700)], product="lightMain", name="data")
    (src,) = studio.local_root.rglob("l.bin")  # published here: the only copy
    src.unlink()
    studio.sync()  # the only copy is lost here: missing; studio waits for a source: no_source
    counts = {x.site: x.counts for x in c.store.project_site_summaries(c.store.project("show").id)}
    assert counts[SITE_ID].get("missing") == 1 and counts["studio"].get("no_source") == 1
    _assert_counted(studio)
    src.write_bytes(b"l" * 700)
    c.validate("local")
    _assert_counted(studio)
    assert rep


def test_forgetting_a_site_takes_its_counters_away(studio: Studio) -> None:
    keep_publishes_local(studio)
    rep = studio.publish([studio.write("f.bin", b"f" * 10)], product="fMain")
    studio.client.upload(rep, "studio")
    project_id = studio.client.store.project("show").id
    assert "studio" in {x.site for x in studio.client.store.project_site_summaries(project_id)}
    studio.client.store.forget_site("studio", "tests")
    assert "studio" not in {x.site for x in studio.client.store.project_site_summaries(project_id)}
    _assert_counted(studio)


def test_concurrent_claims_and_outcomes_keep_the_counters_exact(studio: Studio) -> None:
    """Workers claiming, refreshing and recording at once (PostgreSQL: real concurrency, the
    counters spread over slots; SQLite: one writer at a time) end with exact counters."""
    c = studio.client
    reps = [
        studio.publish(
            [studio.studio_file(f"show/cc{r}/f.{i}.bin", size=100 + i) for i in range(8)],
            site="studio",
            product=f"p{r}",
            name="bin",
        )
        for r in range(6)
    ]
    for rep in reps:
        c.download(rep)
    store = c.store
    project_id = store.project("show").id
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for round_ in range(6):
                claims = store.claim(project_id, SITE_ID, ["studio"], f"w{n}", 3, 60, refresh_summaries=round_ % 2 == 0)
                if round_ % 2:
                    store.refresh_summaries({(x.representation_id, x.site) for x in claims})
                store.record_outcomes(
                    f"w{n}",
                    [
                        Outcome(
                            replica_id=x.replica_id,
                            file_id=x.file_id,
                            representation_id=x.representation_id,
                            project_id=x.project_id,
                            site=x.site,
                            kind="present" if (x.replica_id + n) % 3 else "failed",
                            source_site="studio",
                            bytes=x.size,
                            duration=0.01,
                            error=None if (x.replica_id + n) % 3 else "disk on fire",
                            alternatives=(),
                            unavailable_site=None,
                        )
                        for x in claims
                    ],
                )
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with store.engine.connect() as conn:
        slots = conn.execute(sa.select(sa.func.count()).select_from(s.site_counts)).scalar_one()
    assert slots >= 2  # studio and this machine at least
    _assert_counted(studio)
    counts = {x.site: x.counts for x in store.project_site_summaries(project_id)}
    assert sum(counts[SITE_ID].values()) == 6 * 8


def test_the_generator_writes_consistent_summaries_and_counters(db_url: str, home: Path) -> None:
    from sitesync import Client
    from sitesync.state.summaries import drift
    from sitesync.state.synthetic import generate_catalog, requeue

    client = Client(db=db_url, home=home)
    try:
        client.init()
        client.create_project("gen", {"work": {"any": str(home / "studio")}})
        project_id = client.store.project("gen").id
        generate_catalog(client.store.engine, project_id, "gen", 120, 3, site="ws-gen", source_site="studio")
        with client.store.engine.connect() as conn:
            assert drift(conn) == []
            assert conn.execute(sa.select(sa.func.count()).select_from(s.replicas)).scalar_one() == 120 * 3 * 2
        summary = {x.site: x.counts for x in client.store.project_site_summaries(project_id)}
        assert summary["studio"] == {"present": 360}
        # by representation i % 50: 60 present, 50 queued, 8 failed, 2 in progress, of 3 files each
        assert summary["ws-gen"] == {"present": 180, "queued": 150, "failed": 24, "in_progress": 6}
        claims = client.store.claim(project_id, "ws-gen", ["studio"], "w", 10, 60)
        assert len(claims) == 10
        requeue(client.store.engine, [x.replica_id for x in claims])
        with client.store.engine.connect() as conn:
            assert drift(conn) == []
    finally:
        client.close()


def test_upgrading_fills_the_counters(db_url: str, home: Path) -> None:
    from alembic import command

    from sitesync.state.database import _alembic_config, create_db_engine
    from tests.conftest import make_studio

    studio = make_studio(Path(str(home) + "-studio"), db_url, home)
    engine = create_db_engine(db_url)
    try:
        build_catalog(studio)
        with engine.begin() as conn:
            command.downgrade(_alembic_config(conn), "0005")
        with engine.begin() as conn:
            assert "site_counts" not in sa.inspect(conn).get_table_names()
        studio.client.init()
        with engine.connect() as conn:
            assert stored_counts(conn) == recount(conn) != {}
        _assert_counted(studio)
    finally:
        studio.client.close()
        engine.dispose()


def _plans_of_queue_pages(pg_url: str, home: Path, pages: list[dict[str, object]]) -> list[str]:
    """The EXPLAIN ANALYZE plans of Sync Queue pages over 3,000 generated representations."""
    from sitesync import Client
    from sitesync.state.listing import QueueFilter
    from sitesync.state.synthetic import explain, generate_catalog

    client = Client(db=pg_url, home=home)
    try:
        client.init()
        client.create_project("gen", {"work": {"any": str(home / "studio")}})
        store = client.store
        project_id = store.project("gen").id
        generate_catalog(store.engine, project_id, "gen", 3000, 1, site="ws-gen", source_site="studio")
        out = []
        for page in pages:
            text = page.pop("text", None)
            plans = explain(
                store.engine,
                lambda text=text, page=page: store.queue_page(
                    project_id, "ws-gen", "studio", QueueFilter(text=text), **page
                ),
            )
            out.append("\n".join(plan for _statement, plan in plans))
        return out
    finally:
        client.close()


def test_the_text_filter_reads_the_trigram_index_and_deep_pages_the_index_only_on_postgresql(
    pg_url: str, home: Path
) -> None:
    text, deep = _plans_of_queue_pages(pg_url, home, [{"text": "sh0420"}, {"offset": 2500, "limit": 50}])
    assert "ix_representations_text_trgm" in text, text
    assert "Index Only Scan using ix_representations_folder_order" in deep, deep


@pytest.mark.parametrize("words", ["sh042", "ANIM sh04", "a_b%"])
def test_the_text_filter_finds_the_same_rows_on_both_databases(studio: Studio, words: str) -> None:
    """Indexed (PostgreSQL) or scanned (SQLite), a word matches case-insensitively as a substring
    of the folder, product or name, with LIKE's wildcards taken literally."""
    from sitesync.state.listing import QueueFilter

    c = studio.client
    made = {
        studio.publish(
            [studio.studio_file(f"show/{folder}/{product}/f.bin", size=10)],
            site="studio",
            folder=folder,
            product=product,
            name=name,
        ): (folder, product, name)
        for folder, product, name in [
            ("seq/sh0420", "animMain", "abc"),
            ("seq/sh0430", "animMain", "abc"),
            ("seq/sh0421", "renderMain", "exr"),
            ("seq/a_b%x", "animMain", "abc"),
            ("seq/axbyx", "animMain", "abc"),
        ]
    }
    project_id = c.store.project("show").id
    page = c.store.queue_page(project_id, SITE_ID, "studio", QueueFilter(text=words), limit=50)
    found = {x["id"] for x in page.rows}

    def matches(fields: tuple[str, str, str]) -> bool:
        return all(any(w.lower() in f.lower() for f in fields) for w in words.split())

    assert found == {rep for rep, fields in made.items() if matches(fields)}
    assert page.total == len(found)
