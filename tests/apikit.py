"""Helpers for the API and dashboard tests: an app around a studio, and a small catalog with
representations in every state, built through the real client, store and worker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from sitesync.api.app import create_app
from tests.conftest import SITE_ID, Studio

SECRET = "TOPSECRET-memory-token-7f3a9c"
TOKEN = "api-token-for-tests"


@contextmanager
def api_client(studio: Studio, *, token: str | None = None, worker: Any = None, **kw: Any) -> Iterator[TestClient]:
    app = create_app(studio.client, token=token, worker=worker, **kw)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with TestClient(app, base_url="http://127.0.0.1", headers=headers) as client:
        yield client


@dataclass
class Catalog:
    """Representation ids by the state they were put in."""

    reps: dict[str, int]
    corrupted: int


def build_catalog(studio: Studio) -> Catalog:
    """A dozen representations on ``show``: present on both sites, only on studio, queued,
    failed (a file in the way of the download), paused, in progress (a lease held), being removed, hero,
    published from this machine (queued for studio)."""
    c = studio.client
    c.settings_set("retry_count", 1, project="show")
    specs = [
        ("both_a", "seq01/sh010", "animMain", 1, "ma", 1),
        ("both_b", "seq01/sh020", "renderMain", 3, "exr", 3),
        ("studio_only_a", "seq01/sh010", "renderMain", 2, "exr", 2),
        ("studio_only_b", "assets/chars/hero_bob", "modelMain", 7, "abc", 1),
        ("queued", "seq02/sh100", "cacheMain", 4, "abc", 2),
        ("failed", "seq02/sh110", "plateMain", 1, "exr", 2),
        ("paused", "seq02/sh120", "animMain", 5, "ma", 1),
        ("in_progress", "seq02/sh130", "renderMain", 9, "exr", 3),
        ("removing", "seq03/sh200", "layoutMain", 2, "ma", 1),
        ("hero", "seq03/sh210", "renderMain", "hero", "exr", 2),
    ]
    reps: dict[str, int] = {}
    for key, folder, product, version, name, nfiles in specs:
        files = [
            studio.studio_file(
                f"show/{folder}/{product}/{version}/{name}/{product}.{1001 + i}.{name}", size=512 + 97 * i
            )
            for i in range(nfiles)
        ]
        reps[key] = studio.publish(files, site="studio", folder=folder, product=product, version=version, name=name)
    for key in ("both_a", "both_b", "removing"):
        c.download(reps[key])
    # a file someone put where a download goes: it is never replaced, the download fails
    in_the_way = studio.local_path("show/seq02/sh110/plateMain/1/exr/plateMain.1001.exr")
    c.download(reps["failed"])
    in_the_way.parent.mkdir(parents=True, exist_ok=True)
    in_the_way.write_bytes(os.urandom(100))
    studio.sync()
    c.download(reps["in_progress"])
    project_id = c.store.project("show").id
    # a worker elsewhere holds leases on its files (the only ones queued here right now)
    claimed = c.store.claim(project_id, SITE_ID, ["studio"], "ws-test/elsewhere/1/abc", 10, 3600)
    assert {x.representation_id for x in claimed} == {reps["in_progress"]}, (claimed, reps)
    c.download(reps["queued"], priority=90)
    c.download(reps["paused"])
    c.pause(representation=reps["paused"], site=SITE_ID)
    c.store.begin_remove(reps["removing"], SITE_ID, 1, "ws-test/remover/1/abc", "tests")
    reps["local_publish"] = studio.publish(
        [studio.write("layout.ma", b"layout scene")], folder="seq03/sh220", product="layoutMain", version=1, name="ma"
    )
    return Catalog(reps, reps["failed"])
