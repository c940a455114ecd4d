"""Alternative sites: the same storage reached another way. The relation is symmetric and
transitive; a copy present on one is present on all of them; nothing is ever copied between them;
and the ``min_copies`` guard counts them as one copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitesync.engine.planner import work_plan
from sitesync.errors import GuardRefusedError
from sitesync.machine_view import alternative_closure
from sitesync.settings.models import SystemSettings
from tests.conftest import SITE_ID, Studio
from tests.test_sync_flow import replica_states, transfer_events


def test_closure_is_symmetric_and_transitive() -> None:
    system = SystemSettings.model_validate(
        {
            "sites": {
                "A": {"provider": "local_drive", "alternative_sites": ["C"]},
                "B": {"provider": "local_drive", "alternative_sites": ["C"]},
                "C": {"provider": "local_drive", "alternative_sites": ["D"]},
                "D": {"provider": "local_drive", "alternative_sites": ["A"]},
                "E": {"provider": "local_drive"},
            }
        }
    )
    closure = alternative_closure(system)
    for site in "ABCD":
        assert closure[site] == set("ABCD") - {site}
    assert "E" not in closure


def _sftp_alias(studio: Studio, root: Path | None = None) -> None:
    """``studio_sftp``: the studio disk as a vendor sees it (here: the very same folder)."""
    studio.client.add_site(
        "studio_sftp", "local_drive", [f"work={root or studio.studio_root}"], {}, alternative_sites=["studio"]
    )


def test_publish_on_a_site_records_its_alternatives_present(studio: Studio) -> None:
    _sftp_alias(studio)
    frames = [studio.studio_file(f"show/sh010/comp/v001/f.{i}.exr", size=512) for i in range(3)]
    rep = studio.publish(frames, site="studio", product="compMain", name="exr")
    assert replica_states(studio, rep) == {"studio": ["present"] * 3, "studio_sftp": ["present"] * 3}
    # hero re-published in place on studio with changed content: the alternative is the same
    # disk, so it holds the new content at once; only genuinely other sites are queued again
    hero_file = studio.studio_file("show/sh010/cache/hero/a.abc", b"one")
    hero = studio.publish([hero_file], site="studio", version="hero", product="cacheMain", name="abc")
    studio.client.download(hero)
    studio.sync()
    assert sorted(replica_states(studio, hero)) == sorted([SITE_ID, "studio", "studio_sftp"])
    hero_file.write_bytes(b"two, longer")
    again = studio.client.publish(
        "show",
        folder="seq01/sh010",
        product="cacheMain",
        version="hero",
        name="abc",
        files=[str(hero_file)],
        site="studio",
    )
    assert again.requeued_sites == (SITE_ID,)
    assert replica_states(studio, hero) == {SITE_ID: ["queued"], "studio": ["present"], "studio_sftp": ["present"]}
    studio.sync()
    assert studio.local_path("show/sh010/cache/hero/a.abc").read_bytes() == b"two, longer"
    assert {e.site for e in transfer_events(studio, hero)} == {SITE_ID}


def test_wanting_a_copy_on_an_alternative_copies_nothing(studio: Studio) -> None:
    never = studio.root / "never-written"
    studio.client.add_site("studio_sftp", "local_drive", [f"work={never}"], {})
    rep = studio.publish([studio.studio_file("show/plates/q.exr", b"plate")], site="studio", product="plateMain")
    assert "studio_sftp" not in replica_states(studio, rep)
    # the alias is declared after the copy existed: asking for the file there records it present
    studio.client.settings_set("system.sites.studio_sftp.alternative_sites", ["studio"])
    result = studio.client.download(rep, "studio_sftp")
    assert result["now_present"] == 1 and result.get("now_queued", 0) == 0
    assert studio.sync().transferred == 0
    assert not never.exists()
    detail = studio.client.status(representation=rep)
    alias = next(r for r in detail["files"][0]["replicas"] if r["site"] == "studio_sftp")
    assert alias["status"] == "present" and alias["source_site"] == "studio"


def test_planner_never_uses_an_alternative_as_a_source(studio: Studio) -> None:
    _sftp_alias(studio)
    view = studio.client.project_view("show")
    plans = {p.target: p.sources for p in work_plan(view, set(), set())}
    assert "studio_sftp" not in plans["studio"] and "studio" not in plans["studio_sftp"]
    assert "studio" in plans[SITE_ID] and "studio_sftp" in plans[SITE_ID]


def test_min_copies_counts_one_storage_once(studio: Studio) -> None:
    _sftp_alias(studio)
    studio.client.settings_set("min_copies", 2, project="show")
    rep = studio.publish([studio.write("m.bin", b"m" * 64)], product="modelMain")
    studio.sync()
    assert sorted(replica_states(studio, rep)) == sorted([SITE_ID, "studio", "studio_sftp"])
    local_copy = studio.local_root / "work/show/seq01/sh010/publish/modelMain/v001/data/m.bin"
    with pytest.raises(GuardRefusedError, match="min_copies=2"):
        studio.client.remove(rep)  # studio and studio_sftp are one disk: one copy, not two
    assert local_copy.exists()


def test_removing_through_an_alternative_drops_the_whole_storage(studio: Studio) -> None:
    _sftp_alias(studio)
    rep = studio.publish([studio.write("r.bin", b"r" * 64)], product="rigMain")
    studio.sync()
    studio_copy = studio.studio_root / "show/seq01/sh010/publish/rigMain/v001/data/r.bin"
    assert studio_copy.exists()
    # deleting through the alias deletes the studio disk's file: both records go
    result = studio.client.remove(rep, "studio_sftp")
    assert result.deleted == 1 and not studio_copy.exists()
    assert replica_states(studio, rep) == {SITE_ID: ["present"]}
    # and the local copy is now the last one
    with pytest.raises(GuardRefusedError):
        studio.client.remove(rep)
