"""The dashboard in a real browser: Debian's Chromium driven by Playwright against a real
`sitesync serve` process (worker, API and dashboard on a free loopback port). Filter, sort, open a
representation's detail, download and watch it arrive, pause and resume at machine and
representation level, see the min_copies refusal, the other tabs, and the token prompt.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.apikit import SECRET, TOKEN, build_catalog
from tests.browserkit import WAIT_MS, browser, new_page, row, served, shot
from tests.conftest import Studio

__all__ = ["browser"]


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
    with served(studio) as url:
        watched = new_page(browser)
        page, problems = watched.page, watched.problems
        page.goto(url)
        expect(page.locator("[data-testid=machine]")).to_have_text("ws-test")
        expect(page.locator("[data-project=show]")).to_have_class(re.compile("selected"))
        expect(page.locator("#queue-body tr")).to_have_count(len(cat.reps), timeout=WAIT_MS)
        expect(page.locator("#page-info")).to_have_text(f"1\u2013{len(cat.reps)} of {len(cat.reps)}")
        shot(page, "dashboard-queue")

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
        page.click("button.sort[data-sort=size]")
        expect(page.locator("th.col-size")).to_have_class(re.compile("sorted desc"))
        expect(page.locator("th.col-size")).to_have_attribute("aria-sort", "descending")
        sizes = [
            int(x)
            for x in page.locator("#queue-body td.num[title$=' bytes']").evaluate_all(
                "cells => cells.map(c => c.title.split(' ')[0])"
            )
        ]
        assert sizes == sorted(sizes, reverse=True) and len(sizes) == len(cat.reps)
        page.click("button.sort[data-sort=size]")
        expect(page.locator("th.col-size")).not_to_have_class(re.compile("desc"))

        # the detail panel of the failed representation shows its files and the error
        row(page, cat.reps["failed"]).locator("td").nth(1).click()
        detail = page.locator("[data-testid=detail]")
        expect(detail).to_be_visible()
        expect(detail.locator(".sitecard[data-site=ws-test]")).to_have_attribute("data-status", "failed")
        expect(detail).to_contain_text("a different file is already at")
        page.click("[data-testid=dtab-files]")
        expect(detail.locator("[data-testid=detail-files] tr")).to_have_count(2)
        shot(page, "dashboard-detail")
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

        # pause this machine: a new download waits; pause and resume it; resume the machine
        page.click("[data-testid=worker-toggle]")
        expect(page.locator("[data-testid=worker-state]")).to_contain_text("this machine is paused")
        expect(page.locator("[data-testid=pause-banner]")).to_contain_text("Paused: this machine (by ")
        expect(page.locator("[data-testid=worker-toggle]")).to_have_text("Resume this machine")
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
        expect(refusal).to_contain_text("1 representation was not removed: refused: removing the copy of")
        shot(page, "dashboard-actions")

        # the other tabs: events, sites (secrets masked), settings
        studio.client.add_site("cloud", "memory", options={"namespace": "cloud", "token": SECRET})
        page.click("[data-testid=tab-events]")
        expect(page.locator("#events-body tr").first).to_be_visible()
        page.select_option("[data-testid=events-kind]", "failure")
        expect(page.locator("#events-body tr").first).to_contain_text("a different file is already at")
        page.click("[data-testid=tab-sites]")
        cloud = page.locator("[data-testid=site-cloud]")
        cloud.locator("summary").click()
        expect(cloud).to_contain_text('token = "********"')
        assert SECRET not in page.content()
        page.click("[data-testid=tab-settings]")
        min_copies = page.locator("[data-testid='field-min_copies']")
        expect(min_copies.locator("[data-input]")).to_have_value("2")
        retry = page.locator("[data-testid='field-retry_count']")
        retry.locator("[data-input]").fill("-3")
        retry.locator("button[data-save]").click()
        expect(retry.locator(".error")).to_contain_text("retry_count")
        shot(page, "dashboard-sites-settings")
        assert not problems, problems
        page.close()


def test_token_prompt_then_live_queue(browser: Browser, sqlite_studio: Studio) -> None:
    cat = build_catalog(sqlite_studio)
    with served(sqlite_studio, token=TOKEN) as url:
        page = new_page(browser).page
        page.goto(url)
        modal = page.locator("[data-testid=modal]")
        expect(modal).to_contain_text("This server needs a token")
        page.fill("[data-testid=token-input]", "wrong")
        page.click("[data-testid=modal-ok]")
        expect(page.locator("[data-testid=token-refused]")).to_have_text(
            "token refused: that is not this server's token"
        )
        page.fill("[data-testid=token-input]", TOKEN)
        page.click("[data-testid=modal-ok]")
        expect(page.locator("#queue-body tr")).to_have_count(len(cat.reps), timeout=WAIT_MS)
        # a change made elsewhere shows up without reloading the page
        rep = cat.reps["studio_only_a"]
        sqlite_studio.client.download(rep)
        expect(row(page, rep)).to_have_attribute("data-active", "present", timeout=WAIT_MS)
        page.close()
