"""End to end through sitesync's own engine: files published on a local studio site are uploaded to
a WebDAV site, the studio copies are removed (the WebDAV copies count as the proof), then downloaded
back; what comes back is byte for byte what was published."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from conftest import DavServer
from sitesync import Client


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_publish_upload_remove_download(tmp_path: Path, dav_server: DavServer, monkeypatch: pytest.MonkeyPatch) -> None:
    home, studio_root = tmp_path / "home", tmp_path / "studio"
    monkeypatch.setenv("SITESYNC_HOME", str(home))
    monkeypatch.setenv("SITESYNC_SITE_ID", "ws-dav-test")
    monkeypatch.delenv("SITESYNC_DB", raising=False)
    client = Client(db=f"sqlite:///{tmp_path / 'state.db'}", home=home)
    try:
        client.init()
        client.settings_set("local_root", str(tmp_path / "local"), local=True)
        client.create_project("show", {"work": {"any": str(studio_root)}})
        client.add_site("cloud", "webdav", ["work=/projects"], dav_server.options())
        for key, value in {"active_site": "studio", "remote_site": "cloud", "retry_backoff": 0}.items():
            client.settings_set(key, value, project="show")

        folder = studio_root / "show" / "sh010" / "render"
        folder.mkdir(parents=True)
        sizes = {"sh010.1001.exr": 3 * 1024 * 1024 + 5, "sh010.1002.exr": 70_000, "empty.txt": 0, "é è.json": 17}
        for name, size in sizes.items():
            (folder / name).write_bytes(os.urandom(size))
        published = {name: _digest(folder / name) for name in sizes}
        rep = client.publish(
            "show",
            folder="sh010",
            product="render",
            version=1,
            name="exr",
            files=[str(folder / name) for name in sizes],
            site="studio",
        ).representation_id

        report = client.sync_once("show")
        assert report.transferred == len(sizes)
        on_share = dav_server.folder / "projects" / "show" / "sh010" / "render"
        assert {p.name: _digest(p) for p in on_share.iterdir()} == published
        assert list(dav_server.folder.rglob(".sitesync-*.part")) == [], "a temporary upload was left"

        client.remove(rep, site="studio")  # allowed: the WebDAV copies are verified copies
        assert not any((folder / name).exists() for name in sizes)

        client.download(rep, site="studio")
        report = client.sync_once("show")
        assert report.transferred == len(sizes)
        assert {name: _digest(folder / name) for name in sizes} == published
        states = {r["site"]: r["status"] for f in client.status(representation=rep)["files"] for r in f["replicas"]}
        assert states == {"studio": "present", "cloud": "present"}
    finally:
        client.close()
