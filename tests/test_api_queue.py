"""The Sync Queue list through the REST API on real SQLite and PostgreSQL: every filter gives the
matching rows and a total that counts them, every sort orders the rows (nothing on the site last),
paging walks the same order, and another site pair can be shown."""

from __future__ import annotations

from typing import Any

from tests.apikit import api_client, build_catalog
from tests.conftest import SITE_ID, Studio

RANK = {
    s: i
    for i, s in enumerate(
        ["lost", "failed", "no_source", "removing", "in_progress", "queued", "paused", "partial", "present"]
    )
}
URL = "/api/v1/projects/show/representations"


def everything(http: Any, **query: Any) -> dict[str, Any]:
    response = http.get(URL, params={"limit": 500, **query})
    assert response.status_code == 200, response.text
    return response.json()


def test_rows_show_each_state_on_the_active_and_remote_site(studio: Studio) -> None:
    cat = build_catalog(studio)
    with api_client(studio) as http:
        page = everything(http)
    assert page["active_site"] == SITE_ID and page["remote_site"] == "studio"
    assert page["total"] == len(cat.reps) == len(page["items"])
    rows = {item["id"]: item for item in page["items"]}
    active = {key: rows[rep]["active"]["status"] for key, rep in cat.reps.items()}
    assert active == {
        "both_a": "present",
        "both_b": "present",
        "studio_only_a": "none",
        "studio_only_b": "none",
        "queued": "queued",
        "failed": "failed",
        "paused": "paused",
        "in_progress": "in_progress",
        "removing": "removing",
        "hero": "none",
        "local_publish": "present",
    }
    remote = {key: rows[rep]["remote"]["status"] for key, rep in cat.reps.items()}
    assert remote["local_publish"] == "queued" and set(remote.values()) == {"present", "queued"}
    failed = rows[cat.reps["failed"]]
    assert failed["status"] == "failed" and failed["status_site"] == SITE_ID
    assert "a different file is already at" in failed["active"]["last_error"]
    assert failed["active"]["files_failed"] == 1 and failed["active"]["attempts"] == 1
    both = rows[cat.reps["both_b"]]
    assert both["active"]["progress"] == 1.0 and both["files"] == 3 and both["size"] == 512 * 3 + 97 * 3
    assert both["active"]["updated_at"] is not None and both["version"] == "v003"
    assert rows[cat.reps["hero"]]["version"] == "hero" and rows[cat.reps["hero"]]["version_number"] == -1
    assert rows[cat.reps["queued"]]["priority"] == 90
    assert rows[cat.reps["studio_only_a"]]["active"] == {
        "site": SITE_ID,
        "status": "none",
        "progress": 0.0,
        "updated_at": None,
        "files_present": 0,
        "files_failed": 0,
        "files_missing": 0,
        "files_no_source": 0,
        "paused": False,
        "priority": None,
        "attempts": 0,
        "last_error": None,
    }


def _key(sort: str, item: dict[str, Any]) -> tuple[Any, ...]:
    side = item["active"] if sort.startswith("active") else item["remote"]
    if sort in ("active_status", "remote_status"):
        return (RANK[side["status"]],)
    if sort in ("active_progress", "remote_progress"):
        return (side["progress"],)
    if sort in ("active_updated", "remote_updated"):
        return (side["updated_at"],)
    if sort == "status":
        return (RANK[item["status"]],)
    return (item["priority"],)


def _expected(sort: str, order: str, items: list[dict[str, Any]]) -> list[int]:
    desc = order == "desc"
    by_rep = {
        "folder": lambda x: (x["folder"], x["product"], x["version_number"], x["name"]),
        "product": lambda x: (x["product"], x["id"]),
        "version": lambda x: (x["version_number"], x["id"]),
        "name": lambda x: (x["name"], x["id"]),
        "files": lambda x: (x["files"], x["id"]),
        "size": lambda x: (x["size"], x["id"]),
        "updated": lambda x: (x["updated_at"], x["id"]),
        "id": lambda x: (x["id"],),
    }
    if sort in by_rep:
        return [x["id"] for x in sorted(items, key=by_rep[sort], reverse=desc)]
    # a site column: rows with nothing there come last in either direction
    side = "active" if sort.startswith("active") else "remote"
    empty = (lambda x: x[side]["status"] == "none") if sort not in ("status", "priority") else lambda x: False
    stated = sorted((x for x in items if not empty(x)), key=lambda x: (*_key(sort, x), x["id"]), reverse=desc)
    rest = sorted((x for x in items if empty(x)), key=lambda x: x["id"], reverse=desc)
    return [x["id"] for x in stated + rest]


SORTS = [
    "folder",
    "product",
    "version",
    "name",
    "files",
    "size",
    "updated",
    "active_status",
    "active_progress",
    "active_updated",
    "remote_status",
    "remote_progress",
    "remote_updated",
    "priority",
    "status",
    "id",
]


def test_every_sort_in_both_directions_and_pages_walk_the_same_order(studio: Studio) -> None:
    build_catalog(studio)
    with api_client(studio) as http:
        items = everything(http)["items"]
        for sort in SORTS:
            for order in ("asc", "desc"):
                got = [x["id"] for x in everything(http, sort=sort, order=order)["items"]]
                assert got == _expected(sort, order, items), (sort, order)
        # pages of 4 give the same sequence, through the summary-driven plan and with a filter
        for query in ({"sort": "active_status"}, {"sort": "active_progress", "order": "desc"}, {"sort": "size"}):
            whole = [x["id"] for x in everything(http, **query)["items"]]
            paged: list[int] = []
            for offset in range(0, len(whole) + 4, 4):
                page = http.get(URL, params={**query, "offset": offset, "limit": 4}).json()
                assert page["total"] == len(whole)
                paged += [x["id"] for x in page["items"]]
            assert paged == whole, query


FILTERS: list[tuple[dict[str, str], Any]] = [
    ({"q": "render"}, lambda x: "render" in (x["folder"] + x["product"] + x["name"]).lower()),
    ({"q": "SEQ02 main"}, lambda x: "seq02" in x["folder"] and "main" in x["product"].lower()),
    ({"q": "nothing-like-this"}, lambda x: False),
    ({"folder": "seq01"}, lambda x: "seq01" in x["folder"]),
    ({"product": "RENDER"}, lambda x: "render" in x["product"].lower()),
    ({"name": "ex"}, lambda x: "ex" in x["name"]),
    ({"version": "3"}, lambda x: x["version_number"] == 3),
    ({"version": "v009"}, lambda x: x["version_number"] == 9),
    ({"version": "hero"}, lambda x: x["version_number"] == -1),
    ({"active_status": "failed"}, lambda x: x["active"]["status"] == "failed"),
    ({"active_status": "none"}, lambda x: x["active"]["status"] == "none"),
    (
        {"active_status": "queued,paused,none"},
        lambda x: x["active"]["status"] in ("queued", "paused", "none") or x["active"]["paused"],
    ),
    ({"remote_status": "queued"}, lambda x: x["remote"]["status"] == "queued"),
    ({"status": "present"}, lambda x: x["status"] == "present"),
    ({"status": "failed,in_progress"}, lambda x: x["status"] in ("failed", "in_progress")),
    ({"active_status": "present", "q": "main"}, lambda x: x["active"]["status"] == "present"),
    ({"active_status": "none", "sort": "remote_updated"}, lambda x: x["active"]["status"] == "none"),
    ({"remote_status": "present", "sort": "active_status"}, lambda x: x["remote"]["status"] == "present"),
    ({"q": "sh1", "sort": "active_progress", "order": "desc"}, lambda x: "sh1" in x["folder"]),
]


def test_filters_give_exactly_the_matching_rows_and_count_them(studio: Studio) -> None:
    build_catalog(studio)
    with api_client(studio) as http:
        items = everything(http)["items"]
        for query, predicate in FILTERS:
            want = {x["id"] for x in items if predicate(x)}
            page = everything(http, **query)
            assert page["total"] == len(want), query
            assert {x["id"] for x in page["items"]} == want, query
            first = http.get(URL, params={**query, "limit": 1}).json()
            assert first["total"] == len(want) and len(first["items"]) == min(1, len(want)), query


def test_another_site_pair_and_bad_input(sqlite_studio: Studio) -> None:
    cat = build_catalog(sqlite_studio)
    with api_client(sqlite_studio) as http:
        page = everything(http, active_site="studio", remote_site="local")
        assert (page["active_site"], page["remote_site"]) == ("studio", SITE_ID)
        row = next(x for x in page["items"] if x["id"] == cat.reps["local_publish"])
        assert (row["active"]["status"], row["remote"]["status"]) == ("queued", "present")
        for query, status, words in [
            ({"active_status": "gone"}, 400, "invalid active status 'gone'"),
            ({"active_site": "mars"}, 404, "unknown site 'mars'"),
            ({"sort": "colour"}, 422, "sort"),
            ({"limit": 0}, 422, "limit"),
            ({"version": "latest"}, 422, "version"),
        ]:
            response = http.get(URL, params=query)
            assert response.status_code == status, (query, response.text)
            body = response.json()
            assert words in body["detail"] and "\n" not in body["detail"], body
        missing = http.get("/api/v1/projects/nope/representations")
        assert missing.status_code == 404 and "unknown project 'nope'" in missing.json()["detail"]
