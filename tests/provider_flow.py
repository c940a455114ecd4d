"""The engine end to end against one cloud site, shared by the provider test modules:
publish -> upload to the site -> remove the local copy -> download back -> byte-identical, with
replica states and the event history checked at every step."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.conftest import SITE_ID, Studio

NAMES = {
    "plate.1001.exr": 3 * 1024 * 1024 + 17,  # several chunks with the small chunk sizes tests use
    "shot 010's take (v2).ma": 20_000,
    "ünïcødé 日本.txt": 1_000,
    "README": 10,
    "empty.bin": 0,
}


def replica_states(studio: Studio, rep_id: int) -> dict[str, list[str]]:
    detail = studio.client.status(representation=rep_id)
    out: dict[str, list[str]] = {}
    for f in detail["files"]:
        for r in f["replicas"]:
            out.setdefault(r["site"], []).append(r["status"])
    return out


def transfer_events(studio: Studio, rep_id: int) -> list[Any]:
    return [e for e in studio.client.store.events(representation_id=rep_id, limit=10_000) if e.kind == "transfer"]


def publish_sample(studio: Studio, folder: str = "seq01/sh010.v1") -> tuple[int, dict[str, bytes]]:
    contents = {name: os.urandom(size) for name, size in NAMES.items()}
    files = [studio.write(f"{folder}/{name}", data) for name, data in contents.items()]
    rep = studio.publish(files, folder=folder, product="plateMain", name="exr")
    return rep, contents


def roundtrip_through_site(studio: Studio, site: str) -> dict[str, Any]:
    """Run the whole flow with ``site`` as the project's remote site; returns what tests may inspect."""
    studio.client.settings_set("remote_site", site, project="show")
    rep, contents = publish_sample(studio)
    n = len(contents)
    assert replica_states(studio, rep) == {SITE_ID: ["present"] * n, site: ["queued"] * n}

    report = studio.sync()
    assert report.transferred == n, report.errors
    assert replica_states(studio, rep) == {SITE_ID: ["present"] * n, site: ["present"] * n}
    uploads = transfer_events(studio, rep)
    assert sorted((e.site, e.source_site) for e in uploads) == [(site, SITE_ID)] * n
    assert sum(e.bytes for e in uploads) == sum(NAMES.values())

    local_dir = studio.local_root / "work/show/seq01/sh010.v1/publish/plateMain/v001/exr"
    removed = studio.client.remove(rep)
    assert removed.deleted == n and removed.site == SITE_ID
    assert not any(Path(local_dir, name).exists() for name in contents)
    assert replica_states(studio, rep) == {site: ["present"] * n}

    studio.client.download(rep)
    assert replica_states(studio, rep) == {site: ["present"] * n, SITE_ID: ["queued"] * n}
    report = studio.sync()
    assert report.transferred == n, report.errors
    for name, data in contents.items():
        assert (local_dir / name).read_bytes() == data, f"{name} differs after the round trip"
    assert replica_states(studio, rep) == {SITE_ID: ["present"] * n, site: ["present"] * n}
    downloads = [e for e in transfer_events(studio, rep) if e.site == SITE_ID]
    assert sorted(e.source_site for e in downloads) == [site] * n
    kinds = [e.kind for e in studio.client.store.events(representation_id=rep, limit=10_000)]
    assert "transfer" in kinds
    return {"rep": rep, "contents": contents}
