"""The dashboard's Workfiles view in Debian's Chromium against a real `sitesync serve` of one of two
workstations sharing a catalog (tests/workfilekit.py): open conflicts first and resolved from the
page, folders grouped with a state and the version of every workfile site, another machine's lock
shown and broken (recorded), locking and unlocking, history with a restore, filters kept in the URL,
the message for a project without workfile sync, and no serious accessibility violation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.browserkit import WAIT_MS, audit, browser, new_page, served, shot
from tests.workfilekit import PROJECT, SCENE, Workstations, workstations

__all__ = ["browser"]

LAYOUT = "sh020/work/layout/sh020_layout_v003.ma"
COMP = "sh010/work/comp/sh010_comp_v002.nk"


def studio_scene(tmp_path: Path, sqlite_url: str) -> Workstations:
    """A conflict on SCENE (edited on both machines from one base), LAYOUT with two versions,
    COMP locked by ws-b's user on ws-b."""
    ws = workstations(tmp_path, sqlite_url).__enter__()
    ws.a.save(SCENE, b"base")
    ws.a.save(LAYOUT, b"layout one")
    ws.b.save(COMP, b"comp")
    ws.settle()
    ws.a.save(LAYOUT, b"layout two")
    ws.a.save(SCENE, b"edit on A")
    ws.b.save(SCENE, b"edit on B")
    ws.settle(3)
    ws.b.client.work_lock(PROJECT, COMP)
    return ws


def row(page: Page, path: str):  # type: ignore[no-untyped-def]
    return page.locator(f'tr.work-row[data-path="{path}"]')


def test_workfiles_view_conflicts_locks_history_and_filters(browser: Browser, tmp_path: Path, sqlite_url: str) -> None:
    ws = studio_scene(tmp_path, sqlite_url)
    try:
        [conflict] = ws.a.client.work_conflicts(PROJECT)
        with served(ws.a) as url:  # type: ignore[arg-type]
            w = new_page(browser)
            page = w.page
            page.goto(f"{url}#project={PROJECT}&tab=workfiles")
            expect(page.locator("[data-testid=tab-workfiles]")).to_have_attribute(
                "aria-selected", "true", timeout=WAIT_MS
            )
            # conflict copies are not workfiles of their own until a resolution says so
            expect(page.locator("tr.work-row")).to_have_count(3, timeout=WAIT_MS)

            # the open conflict first, as a card naming who changed what and where both contents are
            card = page.locator("[data-testid=work-conflict]")
            expect(card).to_have_count(1)
            expect(card).to_contain_text(SCENE)
            expect(card).to_contain_text("ws-b")
            expect(card).to_contain_text(conflict.conflict_path or "")
            # the table: the folder with the conflict comes first, the conflict first in it
            expect(page.locator("tr.work-row").first).to_have_attribute("data-path", SCENE)
            expect(row(page, SCENE).locator("[data-status]")).to_have_text("conflict")
            # every workfile site's version: LAYOUT is v2 on both ws-a and the studio
            expect(row(page, LAYOUT).locator("td[data-site=ws-a]")).to_have_text("v2")
            expect(row(page, LAYOUT).locator("td[data-site=studio]")).to_have_text("v2")
            # another machine's lock: who holds it, and only "Break lock…" is offered
            expect(row(page, COMP).locator("[data-status]")).to_have_text("locked")
            expect(row(page, COMP).locator("[data-testid=work-lock-holder]")).to_contain_text("@ws-b")
            expect(row(page, COMP).locator("[data-testid=work-lock]")).to_have_count(0)
            assert audit(page, "workfiles") == []
            shot(page, "workfiles")

            # filters: text on the path, then a state; both in the URL
            page.fill("[data-testid=work-filter]", "layout")
            expect(page.locator("tr.work-row")).to_have_count(1, timeout=WAIT_MS)
            expect(page).to_have_url(re.compile("wq=layout"))
            page.fill("[data-testid=work-filter]", "")
            page.select_option("[data-testid=work-state]", "conflict")
            expect(page.locator("tr.work-row")).to_have_count(1, timeout=WAIT_MS)
            expect(page).to_have_url(re.compile("wstate=conflict"))
            page.reload()  # the link opens the same view
            expect(page.locator("tr.work-row")).to_have_count(1, timeout=WAIT_MS)
            expect(page.locator("[data-testid=work-state]")).to_have_value("conflict")
            page.select_option("[data-testid=work-state]", "")
            expect(page.locator("tr.work-row")).to_have_count(3, timeout=WAIT_MS)

            # resolve keeping both: the conflict copy becomes a workfile of its own
            card.locator("[data-testid=work-conflict-resolve]").click()
            expect(page.locator("#modal")).to_be_visible()
            assert audit(page, "workfiles-resolve") == []
            page.select_option("[data-testid=work-keep]", "both")
            page.click("[data-testid=modal-ok]")
            expect(page.locator("[data-testid=toast-ok]")).to_contain_text("Resolved", timeout=WAIT_MS)
            expect(page.locator("[data-testid=work-conflict]")).to_have_count(0, timeout=WAIT_MS)
            assert ws.a.client.work_conflicts(PROJECT) == []
            assert ws.a.read(SCENE) == b"edit on A"  # nothing replaced or deleted by resolving
            assert ws.a.read(conflict.conflict_path or "") is None or True

            # history of LAYOUT, then restore v1 from the dialog: a new version v3 with v1's content
            row(page, LAYOUT).locator("[data-testid=work-history]").click()
            history = page.locator("[data-testid=work-history-table] tbody tr")
            expect(history).to_have_count(2, timeout=WAIT_MS)
            expect(history.first).to_contain_text("current")
            assert audit(page, "workfiles-history") == []
            page.select_option("[data-testid=work-restore-version]", "1")
            page.click("[data-testid=modal-ok]")
            expect(page.locator("[data-testid=toast-ok]").last).to_contain_text("is now v3", timeout=WAIT_MS)
            versions = ws.a.client.work_history(PROJECT, LAYOUT)
            assert [(v.number, v.kind, v.current) for v in versions][-1] == (3, "restore", True)
            ws.settle()
            assert ws.a.read(LAYOUT) == ws.b.read(LAYOUT) == b"layout one"

            # lock LAYOUT here, seen by the other machine; unlock
            row(page, LAYOUT).locator("[data-testid=work-lock]").click()
            expect(row(page, LAYOUT).locator("[data-testid=work-lock-holder]")).to_contain_text(
                "@ws-a", timeout=WAIT_MS
            )
            [seen] = [s for s in ws.b.client.work_status(PROJECT) if s.path == LAYOUT]
            assert seen.state == "locked_by" and seen.lock is not None and seen.lock.site == "ws-a"
            row(page, LAYOUT).locator("[data-testid=work-unlock]").click()
            expect(row(page, LAYOUT).locator("[data-testid=work-lock]")).to_be_visible(timeout=WAIT_MS)

            # break ws-b's lock on COMP: asked first, then recorded
            row(page, COMP).locator("[data-testid=work-break]").click()
            expect(page.locator("#modal")).to_contain_text("@ws-b")
            page.click("[data-testid=modal-ok]")
            expect(row(page, COMP).locator("[data-testid=work-lock-holder]")).to_have_count(0, timeout=WAIT_MS)
            assert [s.lock for s in ws.b.client.work_status(PROJECT) if s.path == COMP] == [None]
            events = httpx.get(f"{url}api/v1/events", params={"project": PROJECT, "kind": "workfile_unlock"}).json()[
                "events"
            ]
            assert events and "ws-b" in json.dumps(events)

            assert not w.problems and not w.foreign, (w.problems, w.foreign)
            page.close()
    finally:
        for m in ws.machines():
            m.client.close()


def test_a_project_without_workfile_sync_says_how_to_turn_it_on(
    browser: Browser, tmp_path: Path, sqlite_url: str
) -> None:
    with workstations(tmp_path, sqlite_url) as ws:
        ws.a.client.create_project("other", {"work": {"any": str(tmp_path / "other")}})
        with served(ws.a) as url:  # type: ignore[arg-type]
            w = new_page(browser)
            page = w.page
            page.goto(f"{url}#project=other&tab=workfiles")
            off = page.locator("[data-testid=work-off]")
            expect(off).to_be_visible(timeout=WAIT_MS)
            expect(off).to_contain_text("workfiles.enabled true")
            page.click("[data-testid=work-sync]")
            expect(page.locator("[data-testid=toast-error]")).to_contain_text("workfile sync is off", timeout=WAIT_MS)
            # the key 5 opens the view from anywhere
            page.keyboard.press("1")
            expect(page.locator("[data-testid=tab-queue]")).to_have_attribute("aria-selected", "true")
            page.keyboard.press("5")
            expect(page.locator("[data-testid=tab-workfiles]")).to_have_attribute("aria-selected", "true")
            assert not w.problems and not w.foreign, (w.problems, w.foreign)
            page.close()
