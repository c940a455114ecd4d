"""Who may use the API: bearer token on every API route, no CORS, no cross-origin or non-JSON
changes, loopback host names only without a token, secrets never in any response, and
`sitesync serve` refusing to listen off loopback without a token."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sitesync.api.app import create_app
from tests.apikit import SECRET, TOKEN, api_client, build_catalog
from tests.conftest import Studio

API = "/api/v1"


def get_routes(http: Any, catalog_rep: int) -> list[str]:
    """Every GET path of the OpenAPI document, with real values for its parameters (path
    parameters, and the query parameters a route requires)."""
    spec = http.get(f"{API}/openapi.json").json()
    values = {"project": "show", "rep_id": str(catalog_rep), "name": "cloud"}
    queries = {"path": "{root[work]}/show/seq01/sh010/scene.ma"}
    # routes whose required query names something else (a workfile recorded by record_a_workfile)
    route_queries = {"/api/v1/projects/{project}/workfiles/history": {"path": WORKFILE}}
    out = []
    for path, ops in spec["paths"].items():
        if "get" in ops:
            url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
            required = [p["name"] for p in ops["get"].get("parameters", []) if p["in"] == "query" and p.get("required")]
            if required:
                given = {**queries, **route_queries.get(path, {})}
                url += "?" + urlencode({name: given[name] for name in required})
            out.append(url)
    return out


WORKFILE = "sh010/work/anim/scene.ma"


def record_a_workfile(studio: Studio) -> None:
    """Workfile sync on for ``show`` and one workfile recorded on this machine's site."""
    studio.client.settings_set("workfiles.enabled", True, project="show")
    path = studio.local_path(f"show/{WORKFILE}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"scene")
    os.utime(path, (time.time() - 3600, time.time() - 3600))  # settled: not "being written"
    assert studio.client.work_sync("show").versions == 1


def test_every_api_route_needs_the_token(sqlite_studio: Studio) -> None:
    cat = build_catalog(sqlite_studio)
    record_a_workfile(sqlite_studio)
    sqlite_studio.client.add_site("cloud", "memory", options={"namespace": "c"})
    app = create_app(sqlite_studio.client, token=TOKEN)
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="http://127.0.0.1") as http:
        routes = get_routes(http, cat.reps["both_a"])
        assert len(routes) >= 10
        for path in routes:
            assert http.get(path).status_code == 401, path
            wrong = http.get(path, headers={"Authorization": "Bearer wrong"})
            assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer", path
            assert http.get(path, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401, path
            ok = http.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200, (path, ok.text)
        body = http.post(f"{API}/pause", json={})
        assert body.status_code == 401
        assert body.json() == {
            "detail": "missing or wrong token: send the header Authorization: Bearer <token>",
            "error": "Unauthorized",
        }
        assert sqlite_studio.client.pause_list() == []
        # the API description, its docs page and the dashboard's files load without it
        assert http.get(f"{API}/openapi.json").status_code == 200
        assert http.get(f"{API}/docs").status_code == 200
        assert http.get("/").status_code == 200 and http.get("/static/js/main.js").status_code == 200


def test_no_cors_and_no_cross_origin_or_form_posts(sqlite_studio: Studio) -> None:
    cat = build_catalog(sqlite_studio)
    rep = cat.reps["studio_only_a"]
    with api_client(sqlite_studio) as http:
        preflight = http.options(
            f"{API}/pause",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers
        simple = http.get(f"{API}/projects", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in simple.headers
        for headers in (
            {"Origin": "http://evil.example"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
        ):
            refused = http.post(f"{API}/representations/{rep}/download", json={}, headers=headers)
            assert refused.status_code == 403, headers
        form = http.post(
            f"{API}/representations/{rep}/download", content=b"site=x", headers={"Content-Type": "text/plain"}
        )
        assert form.status_code == 415 and "Content-Type: application/json" in form.json()["detail"]
        bare = http.post(f"{API}/representations/{rep}/download")
        assert bare.status_code == 415
        assert sqlite_studio.client.store.representation_sites(rep).keys() == {"studio"}, "nothing was requested"
        same = http.post(
            f"{API}/representations/{rep}/download",
            json={},
            headers={"Origin": "http://127.0.0.1", "Sec-Fetch-Site": "same-origin"},
        )
        assert same.status_code == 200


def test_only_loopback_host_names_without_a_token(sqlite_studio: Studio) -> None:
    with api_client(sqlite_studio, allowed_hosts=["127.0.0.1", "localhost", "::1"]) as http:
        assert http.get(f"{API}/health").status_code == 200
        assert http.get(f"{API}/health", headers={"Host": "localhost:8765"}).status_code == 200
        assert http.get(f"{API}/health", headers={"Host": "[::1]:8765"}).status_code == 200
        rebound = http.get(f"{API}/health", headers={"Host": "evil.example:8765"})
        assert rebound.status_code == 403 and "loopback" in rebound.json()["detail"]
        assert http.get("/", headers={"Host": "evil.example"}).status_code == 403


@pytest.fixture
def secret_studio(sqlite_studio: Studio, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Studio, Any]]:
    """A studio whose sites carry secrets: a literal token, one from the environment, and a
    project-level override."""
    monkeypatch.setenv("SITESYNC_TEST_SECRET", SECRET + "-env")
    c = sqlite_studio.client
    cat = build_catalog(sqlite_studio)
    c.add_site("cloud", "memory", options={"namespace": "cloud", "token": SECRET})
    c.add_site("vault", "memory", options={"namespace": "vault"}, local_options={"token": "env:SITESYNC_TEST_SECRET"})
    c.settings_set("sites.vault.options.token", SECRET + "-project", project="show")
    c.settings_set("always_accessible_on", ["cloud"], project="show")
    rep = sqlite_studio.publish([sqlite_studio.write("for-cloud.bin", b"cloud data")], product="cloudMain")
    yield sqlite_studio, (cat, rep)


def test_secrets_never_appear_in_any_response(secret_studio: tuple[Studio, Any]) -> None:
    studio, (_cat, rep) = secret_studio
    worker = studio.client.worker()
    with api_client(studio, worker=worker) as http:
        bodies: list[str] = []
        routes = get_routes(http, rep)
        for path in routes:
            for params in ({}, {"project": "show"}, {"project": "show", "effective": "true"}):
                response = http.get(path, params=params)
                bodies.append(response.text)
        for site in ("cloud", "vault", "studio", "local"):
            bodies.append(http.get(f"{API}/sites/{site}", params={"project": "show"}).text)
            bodies.append(http.post(f"{API}/sites/{site}/check", json={"project": "show"}).text)
        bodies.append(
            http.put(f"{API}/settings", json={"key": "system.sites.cloud.options.token", "value": SECRET + "-new"}).text
        )
        bodies.append(
            http.put(
                f"{API}/settings", json={"key": "sites.vault.options.token", "value": SECRET + "-p2", "project": "show"}
            ).text
        )
        bodies.append(
            http.put(f"{API}/settings", json={"key": "system.sites.cloud.options.namespace", "value": 5}).text
        )
        bodies.append(
            http.put(f"{API}/settings", json={"key": "system.sites.cloud.options.bogus", "value": SECRET}).text
        )
        bodies.append(http.post(f"{API}/representations/{rep}/upload", json={"site": "cloud"}).text)
        bodies.append(
            http.post(f"{API}/actions", json={"action": "download", "site": "vault", "representation_ids": [rep]}).text
        )
        bodies.append(http.get(f"{API}/representations/{rep}").text)
        bodies.append(http.get(f"{API}/events", params={"limit": 500}).text)
        bodies.append(http.get(f"{API}/openapi.json").text)
    everything = "\n".join(bodies)
    assert "********" in everything, "secrets are shown masked"
    assert SECRET not in everything
    assert "SITESYNC_TEST_SECRET" not in everything, "not even the reference to where the secret lives"
    for body in bodies:
        if body.startswith("# HELP sitesync"):  # GET /metrics: the Prometheus text format
            assert list(text_string_to_metric_families(body))
        else:
            json.loads(body)  # every other answer is JSON


def test_serve_refuses_to_listen_off_loopback_without_a_token(sqlite_studio: Studio) -> None:
    # a token is always required now (this machine's token file by default): only --no-token is refused
    for host in ("0.0.0.0", "192.0.2.10", "::"):
        proc = sqlite_studio.cli("serve", "--host", host, "--port", "0", "--no-token")
        assert proc.returncode == 2, proc
        assert proc.stderr.strip().splitlines() == [
            f"error: refusing to serve on {host} without a token: --no-token is for loopback on a single-user machine"
        ]
    bad = sqlite_studio.cli("serve", "--log-level", "loud")
    assert bad.returncode == 2 and "invalid --log-level" in bad.stderr


def test_a_real_server_with_a_token(sqlite_studio: Studio) -> None:
    env = sqlite_studio.env()
    env["SITESYNC_TOKEN"] = TOKEN
    proc = subprocess.Popen(
        [sys.executable, "-m", "sitesync", "serve", "--port", "0", "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "token required" in line and TOKEN not in line, line
        base = re.search(r"API (http://\S+)", line).group(1)
        assert list(sqlite_studio.home.rglob("*.port")), "the worker listens for wake-ups"
        with httpx.Client(base_url=base, timeout=30) as http:
            _wait_up(http)
            assert http.get("/health").status_code == 401
            health = http.get("/health", headers={"Authorization": f"Bearer {TOKEN}"}).json()
            assert health["auth"] is True and health["worker"]["running"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert TOKEN not in out + err
    assert not list(sqlite_studio.home.rglob("*.port")), "the worker stopped and removed its wake-up file"


def _wait_up(http: httpx.Client) -> None:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            http.get("/health")
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("the server did not answer")
