"""Bandwidth in the faces: ``GET /api/v1/bandwidth`` and the dashboard's indicator in a real
browser (Chromium through Playwright against ``sitesync serve``)."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.apikit import api_client
from tests.browserkit import WAIT_MS, browser, new_page, served  # noqa: F401 - the browser fixture
from tests.conftest import Studio

MIB = 1024 * 1024


def test_api_bandwidth_shows_limits_and_rates(studio: Studio) -> None:
    c = studio.client
    c.settings_set("system.sites.studio.bandwidth", "08:00,8M 19:00,off")
    c.settings_set("bandwidth", "20M:4M", local=True)
    files = [studio.write(f"bw/f{i}.bin", size=MIB) for i in range(2)]
    studio.publish(files)  # queued for studio
    studio.sync()
    with api_client(studio) as api:
        answer = api.get("/api/v1/bandwidth")
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["site_id"] == "ws-test"
    assert data["machine"]["up"]["limit"] == 20 * MIB and data["machine"]["down"]["limit"] == 4 * MIB
    assert data["machine"]["up"]["total"] == 2 * MIB
    studio_entry = data["sites"]["studio"]
    assert studio_entry["schedule"] == "08:00,8M 19:00,off"
    assert studio_entry["up"]["total"] == 2 * MIB
    assert studio_entry["changes_at"] and studio_entry["next"] in ("8M", "off")


def test_dashboard_shows_the_bandwidth_indicator(browser: Browser, sqlite_studio: Studio) -> None:  # noqa: F811
    studio = sqlite_studio
    studio.client.settings_set("system.sites.studio.bandwidth", "12M")
    with served(studio) as url:
        watched = new_page(browser)
        page = watched.page
        page.goto(url)
        indicator = page.locator("[data-testid=bandwidth]")
        expect(indicator).to_be_visible(timeout=WAIT_MS)
        expect(indicator).to_contain_text("1 limit", timeout=WAIT_MS)
        expect(indicator).to_have_attribute("title", "studio: ↑ idle / 12 MiB/s, ↓ idle / 12 MiB/s · 12M")
        page.close()
    assert not watched.problems, watched.problems
