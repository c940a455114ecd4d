"""The worker's batch statements on the real databases: a claim in one statement returns exactly what
a transfer needs (file facts and every verified holder), in priority order, disjoint between
workers; a batch of outcomes from several sources lands on the right rows."""

from __future__ import annotations

from sitesync.state.records import FileFacts, Outcome, RepresentationKey
from tests.conftest import SITE_ID, Studio


def _publish(studio: Studio, name: str, n: int, queue: list[str], priority: int | None = None) -> int:
    store = studio.client.store
    pid = store.project("show").id
    files = [
        FileFacts(f"{{root[work]}}/show/{name}/f.{i:04d}.exr", 1000 + i, "xxh3_128", f"{i:032x}") for i in range(n)
    ]
    key = RepresentationKey("seq01/sh010", name, 1, "exr")
    return store.publish(pid, key, files, SITE_ID, queue, "tester", priority).representation_id


def _present(claim, source: str) -> Outcome:
    return Outcome(
        replica_id=claim.replica_id,
        file_id=claim.file_id,
        representation_id=claim.representation_id,
        project_id=claim.project_id,
        site=claim.site,
        kind="present",
        source_site=source,
        bytes=claim.size,
    )


def test_claim_returns_file_facts_and_every_holder_in_priority_order(studio: Studio) -> None:
    store = studio.client.store
    pid = store.project("show").id
    low = _publish(studio, "low", 3, ["vault", "studio"])
    high = _publish(studio, "high", 2, ["vault", "studio"], priority=90)
    # vault gets a verified copy of the high-priority files only
    vault_claims = store.claim(pid, "vault", [SITE_ID], "w-vault", 100, 30)
    assert [c.representation_id for c in vault_claims] == [high, high, low, low, low], "priority first, then id"
    store.record_outcomes("w-vault", [_present(c, SITE_ID) for c in vault_claims if c.representation_id == high])

    claims = store.claim(pid, "studio", [SITE_ID, "vault"], "w1", 3, 30)
    assert len(claims) == 3, "the limit is honoured"
    assert [c.representation_id for c in claims] == [high, high, low]
    assert [c.priority for c in claims] == [90, 90, 50]
    first = claims[0]
    assert first.path == "{root[work]}/show/high/f.0000.exr"
    assert (first.size, first.hash_algo, first.hash) == (1000, "xxh3_128", f"{0:032x}")
    assert first.sources == tuple(sorted(("vault", SITE_ID))), "every site with a verified copy"
    assert claims[2].sources == (SITE_ID,), "vault holds no copy of the low-priority files (its lease is open)"
    assert all(c.site == "studio" and c.project_id == pid and c.attempts == 0 for c in claims)

    rest = store.claim(pid, "studio", [SITE_ID, "vault"], "w2", 100, 30)
    assert {c.replica_id for c in rest}.isdisjoint(c.replica_id for c in claims), "leased rows are not claimed twice"
    assert len(rest) == 2
    assert store.claim(pid, "studio", ["vault"], "w3", 100, 30) == [], "nothing left with a copy on vault"


def test_claim_skips_files_without_a_copy_on_a_source(studio: Studio) -> None:
    store = studio.client.store
    pid = store.project("show").id
    _publish(studio, "only_local", 2, ["studio"])
    assert store.claim(pid, "studio", ["elsewhere"], "w1", 10, 30) == []
    assert len(store.claim(pid, "studio", [SITE_ID], "w1", 10, 30)) == 2


def test_outcome_batch_from_several_sources(studio: Studio) -> None:
    store = studio.client.store
    pid = store.project("show").id
    rep = _publish(studio, "mixed", 6, ["studio"])
    claims = store.claim(pid, "studio", [SITE_ID], "w1", 10, 30)
    assert len(claims) == 6
    outcomes = [_present(claims[0], SITE_ID), _present(claims[1], "vault"), _present(claims[2], SITE_ID)]
    outcomes.append(
        Outcome(
            replica_id=claims[3].replica_id,
            file_id=claims[3].file_id,
            representation_id=rep,
            project_id=pid,
            site="studio",
            kind="failed",
            source_site=SITE_ID,
            error="disk full",
            attempts=1,
        )
    )
    outcomes.append(
        Outcome(
            replica_id=claims[4].replica_id,
            file_id=claims[4].file_id,
            representation_id=rep,
            project_id=pid,
            site="studio",
            kind="release",
            source_site=SITE_ID,
        )
    )
    # the sixth lease was lost to another worker: its outcome must be discarded
    stolen = _present(claims[5], SITE_ID)
    assert store.record_outcomes("w1", outcomes) == 5
    assert store.record_outcomes("other-worker", [stolen]) == 0

    rows = {r.file_id: r for _f, replicas in store.representation_detail(rep) for r in replicas if r.site == "studio"}
    sizes = {c.file_id: c.size for c in claims}
    for claim, source in ((claims[0], SITE_ID), (claims[1], "vault"), (claims[2], SITE_ID)):
        row = rows[claim.file_id]
        assert (row.status, row.source_site, row.bytes_done, row.lease_owner) == (
            "present",
            source,
            sizes[claim.file_id],
            None,
        )
        assert row.present_since is not None
    assert (rows[claims[3].file_id].status, rows[claims[3].file_id].last_error) == ("failed", "disk full")
    assert (rows[claims[4].file_id].status, rows[claims[4].file_id].attempts) == ("queued", 0)
    assert (rows[claims[5].file_id].status, rows[claims[5].file_id].lease_owner) == ("in_progress", "w1")
    transfers = [e for e in store.events(representation_id=rep, limit=100) if e.kind == "transfer"]
    assert sorted((e.file_id, e.source_site, e.bytes) for e in transfers) == sorted(
        (c.file_id, s, c.size) for c, s in ((claims[0], SITE_ID), (claims[1], "vault"), (claims[2], SITE_ID))
    )
