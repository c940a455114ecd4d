"""The bad-input catalogue for the REST API: every case asserts the status, the exact one-line
``detail`` the caller sees, and that nothing in the database changed."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from sitesync.api.app import create_app
from tests.conftest import Studio, db_snapshot

JSON = {"content-type": "application/json"}


@pytest.fixture
def api(sqlite_studio: Studio) -> tuple[TestClient, Studio]:
    sqlite_studio.publish([sqlite_studio.write("one.bin", b"1")])
    with TestClient(create_app(sqlite_studio.client)) as client:
        yield client, sqlite_studio


CASES: list[tuple[str, str, Any, int, str]] = [
    (
        "POST",
        "/api/v1/representations/1/priority",
        {"priority": 0},
        422,
        "invalid request: priority: Input should be greater than or equal to 1; see /api/v1/docs",
    ),
    (
        "POST",
        "/api/v1/representations/1/priority",
        {"priority": 5000},
        422,
        "invalid request: priority: Input should be less than or equal to 1000; see /api/v1/docs",
    ),
    (
        "POST",
        "/api/v1/representations/999/download",
        {},
        404,
        "unknown representation 999; see `sitesync status PROJECT`",
    ),
    (
        "POST",
        "/api/v1/representations/1/download",
        {"site": "mars"},
        404,
        "unknown site 'mars' in project 'show'; known: studio, ws-test",
    ),
    ("POST", "/api/v1/representations/1/remove", {}, 409, None),
    (
        "GET",
        "/api/v1/projects/ghost/representations",
        None,
        404,
        "unknown project 'ghost'; see `sitesync project list`",
    ),
    (
        "PUT",
        "/api/v1/settings",
        {"key": "retry_count", "value": 0, "project": "show"},
        422,
        "retry_count: must be at least 1 (got 0)",
    ),
    (
        "PUT",
        "/api/v1/settings",
        {"key": "retry_cnt", "value": 3, "project": "show"},
        422,
        "retry_cnt: unknown key; `sitesync settings show --effective` lists the keys",
    ),
    (
        "PUT",
        "/api/v1/settings",
        {"key": "remote_site", "value": "local", "project": "show"},
        422,
        "active_site and remote_site are both 'local': nothing would be synced; choose two different sites "
        "(both 'studio' means site sync is not used)",
    ),
    ("POST", "/api/v1/pause", {"project": "ghost"}, 404, "unknown project 'ghost'; see `sitesync project list`"),
    ("POST", "/api/v1/pause", {"site": "mars"}, 404, "unknown site 'mars'; see `sitesync site list`"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"), CASES, ids=[f"{c[0]} {c[1]} {c[2]}" for c in CASES]
)
def test_bad_payloads(
    api: tuple[TestClient, Studio], method: str, path: str, body: Any, status: int, detail: str | None
) -> None:
    client, studio = api
    before = db_snapshot(studio.db_url)
    response = client.request(method, path, json=body) if body is not None else client.request(method, path)
    assert response.status_code == status, response.text
    payload = response.json()
    assert "\n" not in payload["detail"]
    if detail is not None:
        assert payload["detail"] == detail
    assert db_snapshot(studio.db_url) == before


def test_remove_refusal_names_the_guard(api: tuple[TestClient, Studio]) -> None:
    client, _studio = api
    response = client.post("/api/v1/representations/1/remove", json={})
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail.startswith("refused: removing the copy of representation 1 on site ws-test would leave")
    # plain text: no doubled quotes, no unexpanded {root[...]} placeholder in the example path
    assert "''" not in detail and "{root[" not in detail, detail


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/representations/1/priority", {"priority": "high"}, "priority"),
        ("/api/v1/representations/1/reset", {"scope": "everywhere"}, "scope"),
        ("/api/v1/actions", {"action": "explode", "representation_ids": [1]}, "action"),
        ("/api/v1/actions", {"action": "download", "representation_ids": "1"}, "representation_ids"),
    ],
)
def test_schema_violations_name_the_field(api: tuple[TestClient, Studio], path: str, body: Any, field: str) -> None:
    client, studio = api
    before = db_snapshot(studio.db_url)
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]
    assert db_snapshot(studio.db_url) == before


def test_malformed_json_and_wrong_content_type(api: tuple[TestClient, Studio]) -> None:
    client, studio = api
    before = db_snapshot(studio.db_url)
    response = client.post("/api/v1/representations/1/download", content=b"{not json", headers=JSON)
    assert response.status_code in (400, 422) and response.json()["error"]
    response = client.post(
        "/api/v1/representations/1/download", content=b"site=x", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415
    assert db_snapshot(studio.db_url) == before


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=501", "offset=-1", "sort=colour", "order=sideways", "active_status=exploded"],
)
def test_bad_list_parameters(api: tuple[TestClient, Studio], query: str) -> None:
    client, _studio = api
    response = client.get(f"/api/v1/projects/show/representations?{query}")
    assert response.status_code in (400, 422), response.text
    assert query.split("=")[0].replace("_", " ") in response.json()["detail"].replace("_", " ")
