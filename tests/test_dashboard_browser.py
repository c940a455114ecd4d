"""The dashboard in a real browser: Debian's Chromium driven by Playwright against a real
`sitesync serve` process (worker, API and dashboard on a free loopback port). Filter, sort, open a
representation's detail, download and watch it arrive, pause and resume at worker and
representation level, see the min_copies refusal, the other tabs, and the token prompt.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.apikit import SECRET, TOKEN, build_catalog
from tests.conftest import Studio

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"the browser tests need Debian's Chromium at {CHROMIUM}; scripts/test installs it")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@contextmanager
def served(studio: Studio, token: str | None = None) -> Iterator[str]:
    """`sitesync serve --port 0` for the studio; yields the dashboard URL."""
    env = studio.env()
    env.pop("SITESYNC_TOKEN", None)
    if token:
        env["SITESYNC_TOKEN"] = token
    proc = subprocess.Popen(
        [sys.executable, "-m", "sitesync", "serve", "--port", "0", "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"dashboard (http://\S+)", line)
        assert match, line + proc.stderr.read()
        url = match.group(1)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "api/v1/openapi.json", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.05)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err


def new_page(browser: Browser) -> tuple[Page, list[str]]:
    page = browser.new_page(viewport={"width": 1500, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    # refused requests (a 400 for an invalid setting...) are logged by the browser; the tests
    # check what the page shows for them, so only script errors count as problems here
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console: {msg.text}")
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    return page, problems


def row(page: Page, rep: int) -> Any:
    return page.locator(f"#queue-body tr[data-id='{rep}']")


def quick_filter(page: Page, text: str, expected_rows: int) -> None:
    page.fill("[data-testid=quick-filter]", text)
    expect(page.locator("#queue-body tr")).to_have_count(expected_rows, timeout=WAIT_MS)


def select_only(page: Page, rep: int) -> None:
    if page.locator("#selectionbar").is_visible():
        page.click("[data-testid=clear-selection]")
    row(page, rep).locator("input[type=checkbox]").check()
    expect(page.locator("#selection-count")).to_have_text("1 selected")


def test_filter_detail_download_pause_resume_and_refusal(browser: Browser, sqlite_studio: Studio) -> None:
    studio = sqlite_studio
    cat = build_catalog(studio)
    studio.client.settings_set("min_copies", 2, project="show")
    ARTIFACTS.mkdir(exist_ok=True)
    with served(studio) as url:
        page, problems = new_page(browser)
        page.goto(url)
        expect(page.locator("[data-testid=machine]")).to_have_text("ws-test")
        expect(page.locator("[data-project=show]")).to_have_class(re.compile("selected"))
        expect(page.locator("#queue-body tr")).to_have_count(len(cat.reps), timeout=WAIT_MS)
        expect(page.locator("#page-info")).to_have_text(f"1\u2013{len(cat.reps)} of {len(cat.reps)}")
        page.screenshot(path=str(ARTIFACTS / "dashboard-queue.png"))

        # quick filter, then a column filter
        quick_filter(page, "plateMain", 1)
        expect(row(page, cat.reps["failed"])).to_have_attribute("data-active", "failed")
        quick_filter(page, "", len(cat.reps))
        page.select_option("[data-testid=filter-active-status]", "none")
        expect(page.locator("#queue-body tr")).to_have_count(3, timeout=WAIT_MS)
        for tr in page.locator("#queue-body tr").all():
            expect(tr).to_have_attribute("data-active", "none")
        page.click("[data-testid=clear-filters]")
        expect(page.locator("#queue-body tr")).to_have_count(len(cat.reps), timeout=WAIT_MS)

        # sorting by size, both ways
        page.click("th[data-sort=size]")
        expect(page.locator("th[data-sort=size]")).to_have_class(re.compile("sorted desc"))
        sizes = [
            int(x)
            for x in page.locator("#queue-body td.num[title$=' bytes']").evaluate_all(
                "cells => cells.map(c => c.title.split(' ')[0])"
            )
        ]
        assert sizes == sorted(sizes, reverse=True) and len(sizes) == len(cat.reps)
        page.click("th[data-sort=size]")
        expect(page.locator("th[data-sort=size]")).not_to_have_class(re.compile("desc"))

        # the detail panel of the failed representation shows its files and the error
        row(page, cat.reps["failed"]).locator("td").nth(1).click()
        detail = page.locator("[data-testid=detail]")
        expect(detail).to_be_visible()
        expect(detail.locator(".sitecard[data-site=ws-test]")).to_have_attribute("data-status", "failed")
        expect(detail.locator("[data-testid=detail-files] tr")).to_have_count(2)
        expect(detail).to_contain_text("does not match the catalog")
        page.screenshot(path=str(ARTIFACTS / "dashboard-detail.png"))
        page.click("[data-testid=detail-close]")
        expect(detail).to_be_hidden()

        # download a representation that is only on the studio storage and watch it arrive
        rep = cat.reps["studio_only_b"]
        quick_filter(page, "hero_bob", 1)
        expect(row(page, rep)).to_have_attribute("data-active", "none")
        select_only(page, rep)
        page.click("[data-testid=action-download]")
        expect(page.locator("[data-testid=toast-ok]").last).to_contain_text("download to ws-test: 1 files queued")
        expect(row(page, rep)).to_have_attribute("data-active", "present", timeout=WAIT_MS)

        # pause this machine's worker: a new download waits; pause and resume it; resume the worker
        page.click("[data-testid=worker-toggle]")
        expect(page.locator("[data-testid=worker-state]")).to_contain_text("worker paused")
        expect(page.locator("[data-testid=pause-banner]")).to_contain_text("this machine's worker is paused")
        hero = cat.reps["hero"]
        quick_filter(page, "sh210", 1)
        select_only(page, hero)
        page.click("[data-testid=action-download]")
        expect(row(page, hero)).to_have_attribute("data-active", "queued", timeout=WAIT_MS)
        page.click("[data-testid=action-pause]")
        expect(row(page, hero)).to_have_attribute("data-active", "paused", timeout=WAIT_MS)
        page.click("[data-testid=action-resume]")
        expect(row(page, hero)).to_have_attribute("data-active", "queued", timeout=WAIT_MS)
        page.wait_for_timeout(2500)  # the paused worker leaves it alone
        expect(row(page, hero)).to_have_attribute("data-active", "queued")
        page.click("[data-testid=worker-toggle]")
        expect(page.locator("[data-testid=worker-state]")).not_to_contain_text("paused")
        expect(row(page, hero)).to_have_attribute("data-active", "present", timeout=WAIT_MS)

        # removing the only other copy is refused, with the guard's reason on screen
        both = cat.reps["both_a"]
        quick_filter(page, "animMain", 2)
        select_only(page, both)
        page.click("[data-testid=action-remove]")
        page.click("[data-testid=modal-ok]")
        refusal = page.locator("[data-testid=toast-error]").last
        expect(refusal).to_contain_text("min_copies=2")
        expect(refusal).to_contain_text("upload them to another site first")
        expect(row(page, both)).to_have_attribute("data-active", "present")
        page.screenshot(path=str(ARTIFACTS / "dashboard-actions.png"))

        # the other tabs: events, sites (secrets masked), settings
        studio.client.add_site("cloud", "memory", options={"namespace": "cloud", "token": SECRET})
        page.click("[data-testid=tab-events]")
        expect(page.locator("#events-body tr").first).to_be_visible()
        page.select_option("[data-testid=events-kind]", "failure")
        expect(page.locator("#events-body tr").first).to_contain_text("does not match the catalog")
        page.click("[data-testid=tab-sites]")
        cloud = page.locator("[data-testid=site-cloud]")
        expect(cloud).to_contain_text('token = "********"')
        assert SECRET not in page.content()
        page.click("[data-testid=tab-settings]")
        expect(page.locator("[data-testid=settings-effective]")).to_contain_text('"min_copies": 2')
        page.fill("#setting-key", "retry_count")
        page.fill("#setting-value", "-3")
        page.click("#setting-form button[type=submit]")
        expect(page.locator("[data-testid=toast-error]").last).to_contain_text("retry_count")
        page.screenshot(path=str(ARTIFACTS / "dashboard-sites-settings.png"))
        assert not problems, problems
        page.close()


def test_token_prompt_then_live_queue(browser: Browser, sqlite_studio: Studio) -> None:
    cat = build_catalog(sqlite_studio)
    with served(sqlite_studio, token=TOKEN) as url:
        page, _problems = new_page(browser)
        page.goto(url)
        modal = page.locator("[data-testid=modal]")
        expect(modal).to_contain_text("This server needs a token")
        page.fill("[data-testid=token-input]", "wrong")
        page.click("[data-testid=modal-ok]")
        expect(modal).to_contain_text("This server needs a token")
        page.fill("[data-testid=token-input]", TOKEN)
        page.click("[data-testid=modal-ok]")
        expect(page.locator("#queue-body tr")).to_have_count(len(cat.reps), timeout=WAIT_MS)
        # a change made elsewhere shows up without reloading the page
        rep = cat.reps["studio_only_a"]
        sqlite_studio.client.download(rep)
        expect(row(page, rep)).to_have_attribute("data-active", "present", timeout=WAIT_MS)
        page.close()
