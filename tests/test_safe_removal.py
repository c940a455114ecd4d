"""The guarded removal (``engine/removal.py``) deletes only what it was asked for, proves the other
copies at their storage at the moment it acts, and records exactly what it did when interrupted
(issue 12, path 4 and the drop proof). Real SQLite and PostgreSQL, real files, real workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitesync.errors import GuardRefusedError, SitesyncError
from sitesync.providers import registry
from sitesync.providers.local_drive import LocalDriveProvider
from tests.conftest import SITE_ID, Studio
from tests.test_sync_flow import replica_states

REL = "show/seq01/sh010/publish/{product}/v001/data/{name}"


def _local(studio: Studio, product: str, name: str) -> Path:
    return studio.local_path(REL.format(product=product, name=name))


def _stale_removal(studio: Studio, rep: int, site: str) -> None:
    """A removal whose remover was killed (SIGKILL, power cut) right after the guard: the copies are
    ``removing`` under a lease that has already run out."""
    ticket = studio.client.store.begin_remove(rep, site, 1, "ws-test/killed/1/dead", "tests", lease_seconds=-1)
    assert ticket.replicas


def test_an_interrupted_removal_never_deletes_content_published_again_later(studio: Studio) -> None:
    """Path 4: interrupted removal, the same version re-published with new content, then a worker
    finishing the old removal. Before: the worker deleted the new content (the only copy)."""
    c = studio.client
    src = studio.write("hero.abc", b"first content")
    rep = studio.publish([src], version="hero", product="cacheMain", name="abc")
    studio.sync()
    _stale_removal(studio, rep, SITE_ID)
    # the artist publishes the hero again, with new content, on this machine
    src.write_bytes(b"second content, the only copy of it")
    again = c.publish("show", folder="seq01/sh010", product="cacheMain", version="hero", name="abc", files=[str(src)])
    assert again.representation_id == rep
    local = studio.local_path("show/seq01/sh010/publish/cacheMain/hero/abc/hero.abc")
    assert local.read_bytes() == b"second content, the only copy of it"
    studio.sync()  # a worker: finishes stale removals, uploads the new content
    assert local.read_bytes() == b"second content, the only copy of it"
    assert replica_states(studio, rep)[SITE_ID] == ["present"]
    studio_copy = studio.studio_root / "show/seq01/sh010/publish/cacheMain/hero/abc/hero.abc"
    assert studio_copy.read_bytes() == b"second content, the only copy of it"


def test_a_stale_removal_leaves_a_file_that_is_not_the_content_it_was_asked_to_remove(studio: Studio) -> None:
    rep = studio.publish([studio.write("r.bin", b"the published content")], product="rigMain")
    studio.sync()
    _stale_removal(studio, rep, SITE_ID)
    local = _local(studio, "rigMain", "r.bin")
    local.write_bytes(b"an artist's own file saved over it")  # behind sitesync's back
    studio.sync()
    assert local.read_bytes() == b"an artist's own file saved over it", "a file that is not the copy was deleted"
    assert SITE_ID not in replica_states(studio, rep)  # the copy the removal was about is gone: record dropped
    events = [e.message or "" for e in studio.client.store.events(representation_id=rep, kinds=["remove"])]
    assert any("had a different file in their place, left alone" in m for m in events)


def test_a_stale_removal_is_finished_when_the_copy_is_unchanged(studio: Studio) -> None:
    rep = studio.publish([studio.write("s.bin", b"stale but fine")], product="setMain")
    studio.sync()
    _stale_removal(studio, rep, SITE_ID)
    studio.sync()
    assert not _local(studio, "setMain", "s.bin").exists()
    assert replica_states(studio, rep) == {"studio": ["present"]}


def test_the_drop_proof_checks_the_other_copies_at_their_storage_now(studio: Studio) -> None:
    """git-annex's drop proof: the catalog says studio has a copy, but it was deleted behind
    sitesync's back. Before: removing the local copy was allowed and the file was gone everywhere."""
    c = studio.client
    rep = studio.publish([studio.write("d.bin", b"drop me?")], product="dropMain")
    studio.sync()
    studio_copy = studio.studio_root / REL.format(product="dropMain", name="d.bin")
    studio_copy.unlink()
    with pytest.raises(GuardRefusedError, match="checked at their storage now"):
        c.remove(rep)
    assert _local(studio, "dropMain", "d.bin").read_bytes() == b"drop me?"
    # the location log was corrected: studio's copy is no longer counted, and is fetched again
    assert replica_states(studio, rep) == {SITE_ID: ["present"], "studio": ["queued"]}
    events = c.store.events(representation_id=rep, kinds=["copy_missing"])
    assert events and events[0].site == "studio"
    assert studio.sync().transferred == 1
    assert c.remove(rep).deleted == 1


def test_copies_this_machine_cannot_reach_are_not_counted(studio: Studio) -> None:
    c = studio.client
    c.add_site("backup", "local_drive", [f"work={studio.root / 'backup'}"], {"create_roots": True})
    c.settings_set("remote_site", "backup", project="show")
    rep = studio.publish([studio.write("o.bin", b"offsite")], product="offMain")
    studio.sync()
    # the backup copy's site is switched off on this machine: it cannot be proven from here
    c.settings_set("sites.backup.enabled", False, project="show")
    with pytest.raises(GuardRefusedError, match="cannot reach"):
        c.remove(rep)
    assert _local(studio, "offMain", "o.bin").exists()
    assert replica_states(studio, rep) == {SITE_ID: ["present"], "backup": ["present"]}


class _Interrupting(LocalDriveProvider):
    """Deletes like local_drive, but the user presses Ctrl-C during the third delete."""

    name = "interrupting"
    deletes = 0
    at = 3

    def delete(self, path: str) -> None:
        type(self).deletes += 1
        if type(self).deletes == type(self).at:
            raise KeyboardInterrupt
        super().delete(path)


def test_ctrl_c_during_a_removal_records_exactly_what_was_done(studio: Studio) -> None:
    c = studio.client
    registry.register("interrupting", _Interrupting)
    _Interrupting.deletes, _Interrupting.at = 0, 3
    try:
        vault = studio.root / "vault"
        c.add_site("vault", "interrupting", [f"work={vault}"], {"create_roots": True})
        frames = [studio.studio_file(f"show/sh070/f.{i}.exr", size=100 + i) for i in range(5)]
        rep = studio.publish(frames, site="studio", product="plate", name="exr")
        c.download(rep, "vault")
        assert studio.sync().transferred == 5
        with pytest.raises(SitesyncError, match=r"2 of 5 copies .* were deleted .* the other 3 were not touched"):
            c.remove(rep, "vault")
    finally:
        registry.unregister("interrupting")
    on_vault = sorted(p.name for p in (vault / "show/sh070").iterdir())
    assert on_vault == ["f.2.exr", "f.3.exr", "f.4.exr"]
    assert sorted(replica_states(studio, rep)["vault"]) == ["present"] * 3
    assert replica_states(studio, rep)["studio"] == ["present"] * 5


def test_clear_stops_when_interrupted(studio: Studio) -> None:
    c = studio.client
    registry.register("interrupting", _Interrupting)
    _Interrupting.deletes, _Interrupting.at = 0, 4  # the second file of the second representation
    try:
        c.add_site("vault", "interrupting", [f"work={studio.root / 'vault'}"], {"create_roots": True})
        reps = []
        for i in range(3):
            frames = [studio.studio_file(f"show/sh07{i}/g.{j}.exr", size=50) for j in range(2)]
            reps.append(studio.publish(frames, site="studio", product=f"plate{i}", name="exr"))
            c.download(reps[-1], "vault")
        studio.sync()
        with pytest.raises(SitesyncError, match="interrupted"):
            c.clear("show", "vault")
    finally:
        registry.unregister("interrupting")
    # the first representation went, the second stopped half way, the third was never touched
    assert "vault" not in replica_states(studio, reps[0])
    assert replica_states(studio, reps[1])["vault"] == ["present"]
    assert replica_states(studio, reps[2])["vault"] == ["present", "present"]


def test_remove_cli_says_what_an_interruption_left(sqlite_studio: Studio) -> None:
    studio = sqlite_studio
    rep = studio.publish([studio.write("c.bin", b"cli")], product="cliMain")
    studio.sync()
    studio.client.store.begin_remove(rep, SITE_ID, 1, "ws-test/other/1/x", "tests", lease_seconds=3600)
    proc = studio.cli("remove", str(rep))
    assert proc.returncode == 2 and "being transferred to or removed from" in proc.stderr
    # the live lease of another remover is respected; the copy is still there
    assert _local(studio, "cliMain", "c.bin").exists()
