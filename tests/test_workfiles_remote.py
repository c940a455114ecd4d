"""Workfile sync with an S3 remote site (moto on loopback): two workstations exchange versions
through the bucket, conflicts keep both contents, and every version is kept in the versions area
of the bucket."""

from __future__ import annotations

import os
from pathlib import Path

from sitesync.settings.scopes import split_local_options
from tests.conftest import define_site
from tests.remote_servers import new_bucket
from tests.servers import S3Server
from tests.workfilekit import PROJECT, SCENE, workstations


def test_workfiles_through_an_s3_remote_site(tmp_path: Path, db_url: str, home: Path, moto_s3: S3Server) -> None:
    bucket = new_bucket(moto_s3)
    options = moto_s3.options(bucket, prefix="studio")
    client = moto_s3.boto_client()

    def objects() -> dict[str, bytes]:
        listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        out = {}
        for item in listed:
            key = item["Key"]
            if key.startswith(f"studio/projects/{PROJECT}/"):
                out[key.removeprefix(f"studio/projects/{PROJECT}/")] = client.get_object(Bucket=bucket, Key=key)[
                    "Body"
                ].read()
        return out

    with workstations(tmp_path, db_url) as ws:
        define_site(ws.a.client, "remote", "s3", ["work=/projects"], options)
        _shared, mine = split_local_options("s3", options)
        for key, value in mine.items():  # B's admin sets B's own copy of the local-only options
            ws.b.client.settings_set(f"sites.remote.options.{key}", value, local=True)
        ws.a.client.settings_set("remote_site", "remote", project=PROJECT)
        assert ws.b.client.project_view(PROJECT).workfiles.sites == ["ws-b", "remote"]

        scene = os.urandom(6 * 1024 * 1024)
        ws.a.save(SCENE, scene)
        ws.settle()
        assert ws.b.read(SCENE) == scene == objects()[SCENE]

        ws.a.save(SCENE, b"A")
        ws.b.save(SCENE, b"B")
        ws.settle(3)
        assert (ws.a.read(SCENE), ws.b.read(SCENE)) == (b"A", b"B")
        [conflict] = ws.a.client.work_conflicts(PROJECT)
        assert conflict.conflict_path is not None and conflict.incoming_path is not None
        assert ws.a.read(conflict.conflict_path) == b"B" and ws.b.read(conflict.incoming_path) == b"A"
        ws.a.client.work_resolve(PROJECT, SCENE, "remote")  # on A: B's content wins
        ws.settle(3)
        assert ws.a.read(SCENE) == ws.b.read(SCENE) == objects()[SCENE] == b"B"
        kept = {d for k, d in objects().items() if k.startswith(".sitesync-versions/")}
        assert {scene, b"A", b"B"} <= kept
