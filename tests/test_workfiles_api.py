"""The workfile routes under ``/api/v1/projects/{project}/workfiles`` in process, with a token:
status, sync, lock seen from the other machine (409 names the holder), conflicts, resolve, history
and restore; bad input is a 4xx with one line, never a 500."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from sitesync.api.app import create_app
from tests.workfilekit import PROJECT, SCENE, workstations

TOKEN = "api-token-for-workfile-tests"
BASE = f"/api/v1/projects/{PROJECT}/workfiles"


def test_workfile_routes(tmp_path: Path, sqlite_url: str, home: Path) -> None:
    with workstations(tmp_path, sqlite_url) as ws:
        ws.a.save(SCENE, b"base")
        ws.settle()
        apps = [create_app(m.client, token=TOKEN) for m in ws.machines()]
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with (
            TestClient(apps[0], base_url="http://127.0.0.1", headers=headers) as a,
            TestClient(apps[1], base_url="http://127.0.0.1", headers=headers) as b,
        ):
            [status] = a.get(BASE).json()
            assert (status["path"], status["state"], status["current"]) == (SCENE, "in_sync", 1)
            assert a.get(BASE, params={"path": "*.nk"}).json() == []

            assert a.post(f"{BASE}/lock", json={"path": SCENE}).json()["site"] == "ws-a"
            refused = b.post(f"{BASE}/lock", json={"path": SCENE})
            assert refused.status_code == 409 and "ws-a" in refused.json()["detail"]
            assert b.get(BASE).json()[0]["state"] == "locked_by"
            assert a.post(f"{BASE}/unlock", json={"path": SCENE}).json() == {"unlocked": True}

            ws.a.save(SCENE, b"A")
            ws.b.save(SCENE, b"B")
            assert a.post(f"{BASE}/sync", json={}).json()["versions"] == 1
            assert b.post(f"{BASE}/sync", json={}).json()["conflicts"] == 1
            [conflict] = a.get(f"{BASE}/conflicts").json()
            assert (conflict["kind"], conflict["site"], conflict["blocking"]) == ("edit-edit", "ws-b", True)
            resolved = b.post(f"{BASE}/resolve", json={"path": SCENE, "keep": "local"}).json()
            assert resolved["keep"] == "local"
            ws.settle(3)
            assert ws.a.read(SCENE) == ws.b.read(SCENE) == b"B"

            history = a.get(f"{BASE}/history", params={"path": SCENE}).json()
            assert [v["kind"] for v in history] == ["edit", "edit", "conflict", "resolve"]
            restored = a.post(f"{BASE}/restore", json={"path": SCENE, "version": 1}).json()
            assert (restored["kind"], restored["current"]) == ("restore", True)
            ws.settle()
            assert ws.b.read(SCENE) == b"base"

            for method, url, body, code in [
                ("post", f"{BASE}/resolve", {"path": SCENE, "keep": "mine"}, 422),
                ("post", f"{BASE}/restore", {"path": "../x", "version": 1}, 400),
                ("post", f"{BASE}/restore", {"path": SCENE, "version": 99}, 400),
                ("get", f"{BASE}/history?path=sh010/none.ma", None, 404),
                ("get", "/api/v1/projects/nope/workfiles", None, 404),
                ("post", f"{BASE}/resolve", {"path": SCENE, "keep": "both"}, 409),
            ]:
                response = a.post(url, json=body) if method == "post" else a.get(url)
                assert response.status_code == code, (url, body, response.text)
                assert "\n" not in response.json()["detail"] if isinstance(response.json()["detail"], str) else True
