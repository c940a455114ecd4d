"""The dashboard at any screen size, by keyboard, and offline, in Debian's Chromium.

- At 800, 1280 and 1920 px wide no cell's text runs out of its cell (text cells that truncate
  keep a readable width and their full value in a tooltip), every header is whole, every action is
  reachable (on screen and not covered), and the sidebar collapses on narrow screens; below that the
  table scrolls sideways instead of crushing its columns. Screenshots: test-artifacts/layout-*.png.
- Every control is reachable with Tab; rows move with the arrows, Enter opens the detail, Space
  selects, Esc closes and gives the focus back; ? lists the shortcuts.
- axe-core, run in the page, finds no serious or critical violation in any view or dialog.
- No page of the dashboard or of the API docs requests anything from another host (every such
  request is refused, as in a studio without internet) and the API docs still render.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.apikit import build_catalog
from tests.browserkit import WAIT_MS, Watched, audit, browser, new_page, row, served, shot
from tests.conftest import Studio

__all__ = ["browser"]

# (cell text runs out of its cell) for every visible cell; text cells may truncate with an ellipsis
# but must stay readable and carry their full value in a title
OVERFLOW_JS = """
(stress) => {
  const out = [];
  if (stress) {
    // the longest values these cells show: a change more than a week ago is a date, a transfer near its end
    for (const time of document.querySelectorAll("#queue-body .sitecell .time")) time.textContent = "2026-11-20";
    for (const word of document.querySelectorAll("#queue-body .sitecell .st-in_progress")) word.textContent = "in progress 100%";
  }
  const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).display !== "none";
  for (const cell of document.querySelectorAll("#view-queue thead th, #queue-body td")) {
    if (!visible(cell)) continue;
    const name = (cell.className || cell.tagName) + " " + (cell.closest("tr").dataset.id || "head");
    if (cell.classList.contains("text")) {
      if (cell.clientWidth < 60) out.push(`${name}: only ${cell.clientWidth}px wide`);
      if (cell.scrollWidth > cell.clientWidth + 1 && !cell.title) out.push(`${name}: truncated without a title`);
    } else if (cell.scrollWidth > cell.clientWidth + 1) {
      out.push(`${name}: ${cell.scrollWidth}px of content in ${cell.clientWidth}px`);
    }
    // inside a site cell the status word and the time never overlap
    const word = cell.querySelector(".sitecell .st"), time = cell.querySelector(".sitecell .time");
    if (word && time && time.textContent && visible(time) && time.getBoundingClientRect().width > 0) {
      if (word.getBoundingClientRect().right > time.getBoundingClientRect().left + 0.5) out.push(`${name}: status under its time`);
    }
  }
  return out;
}
"""

# every element is inside the viewport and is what a click at its centre would hit
REACHABLE_JS = """
(selectors) => {
  const out = [];
  for (const selector of selectors) {
    for (const el of document.querySelectorAll(selector)) {
      if (!el.getClientRects().length) continue;
      const r = el.getBoundingClientRect();
      if (r.left < 0 || r.top < 0 || r.right > innerWidth + 0.5 || r.bottom > innerHeight + 0.5) {
        out.push(`${selector}: outside the viewport (${Math.round(r.left)},${Math.round(r.top)})-(${Math.round(r.right)},${Math.round(r.bottom)})`);
        continue;
      }
      const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
      if (hit !== el && !el.contains(hit)) out.push(`${selector}: covered by ${hit && hit.outerHTML.slice(0, 80)}`);
    }
  }
  return out;
}
"""
ACTIONS = [
    "#selectionbar [data-action]",
    "#resync-button",
    "#clear-selection",
    "[data-page]",
    "#page-size",
    ".tabs .tab",
    "#sidebar-toggle",
    "#pause-all",
    "#help-button",
    "#quick-filter",
    "#overview-states button",
]


def long_names(studio: Studio) -> None:
    """Representations with long folder, product and name values (what cut columns before)."""
    for i in range(3):
        path = studio.studio_file(f"show/long{i}/file.exr", size=200)
        studio.publish(
            [path],
            site="studio",
            folder=f"seq030_night_exterior_chase_extended/sh{i:04d}_alternate_take",
            product="lookdevCharacterHeroMainWithVariants",
            name=f"exr_linear_acescg_{i}",
        )


def selected_one(page: Page, rep: int) -> None:
    row(page, rep).locator("input[type=checkbox]").check()
    expect(page.locator("#selectionbar")).to_be_visible()


@pytest.mark.parametrize("width", [800, 1280, 1920])
def test_every_width_keeps_text_in_its_cells_and_every_action_reachable(
    browser: Browser, sqlite_studio: Studio, width: int
) -> None:
    cat = build_catalog(sqlite_studio)
    long_names(sqlite_studio)
    with served(sqlite_studio) as url:
        w = new_page(browser, width=width)
        page = w.page
        page.goto(url)
        expect(page.locator("#queue-body tr")).to_have_count(len(cat.reps) + 3, timeout=WAIT_MS)
        sidebar = page.locator("[data-testid=sidebar]")
        if width < 1100:
            # narrow: the project list starts closed and opens over the content on demand
            expect(sidebar).to_be_hidden()
            page.click("[data-testid=sidebar-toggle]")
            expect(page.locator("[data-project=show]")).to_be_visible()
            page.click("[data-project=show]")
            expect(sidebar).to_be_hidden()
        else:
            expect(page.locator("[data-project=show]")).to_be_visible()
        selected_one(page, cat.reps["in_progress"])
        shot(page, f"layout-{width}")
        assert page.evaluate(OVERFLOW_JS, False) == []
        assert page.evaluate(OVERFLOW_JS, True) == []
        assert page.evaluate(REACHABLE_JS, ACTIONS) == []
        # the table fits: no sideways scrolling at these widths
        scroll = page.evaluate(
            "() => { const w = document.querySelector('#queue-scroll'); return [w.scrollWidth, w.clientWidth]; }"
        )
        assert scroll[0] <= scroll[1] + 1, scroll
        # the detail panel fits the screen and its actions are reachable too
        row(page, cat.reps["failed"]).locator("td.col-folder").click()
        expect(page.locator("[data-testid=detail]")).to_be_visible()
        expect(page.locator("#detail .sitecard[data-site=ws-test] button").first).to_be_visible()
        assert page.evaluate(REACHABLE_JS, ["#detail-close", "#detail .sitecard button", "[data-dtab]"]) == []
        shot(page, f"layout-{width}-detail")
        assert not w.problems and not w.foreign, (w.problems, w.foreign)
        page.close()


def test_narrower_than_that_the_table_scrolls_sideways(browser: Browser, sqlite_studio: Studio) -> None:
    build_catalog(sqlite_studio)
    long_names(sqlite_studio)
    with served(sqlite_studio) as url:
        page = new_page(browser, width=600).page
        page.goto(url)
        expect(page.locator("#queue-body tr").first).to_be_visible(timeout=WAIT_MS)
        wrap = page.evaluate(
            "() => { const w = document.querySelector('#queue-scroll'); return [w.scrollWidth, w.clientWidth]; }"
        )
        assert wrap[0] > wrap[1], "below the smallest layout the table scrolls instead of crushing its columns"
        assert page.evaluate(OVERFLOW_JS, True) == []
        shot(page, "layout-600")
        page.close()


def tab_until(page: Page, predicate: str, limit: int = 80) -> list[str]:
    """Press Tab until ``predicate`` (JS on document.activeElement) holds; returns what got focus."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        seen.append(
            page.evaluate(
                "() => { const a = document.activeElement; return a.tagName + '#' + (a.id || a.dataset.testid || a.dataset.sort || a.dataset.project || a.dataset.id || a.textContent.trim().slice(0, 20)); }"
            )
        )
        if page.evaluate(f"() => {{ const el = document.activeElement; return Boolean({predicate}); }}"):
            return seen
    raise AssertionError(f"never reached {predicate} with Tab: {seen}")


def test_keyboard_operation_and_accessibility_audit(browser: Browser, sqlite_studio: Studio) -> None:
    cat = build_catalog(sqlite_studio)
    with served(sqlite_studio) as url:
        w = new_page(browser, width=1400)
        page = w.page
        page.goto(url)
        expect(page.locator("#queue-body tr")).to_have_count(len(cat.reps), timeout=WAIT_MS)
        violations: dict[str, Any] = {"queue": audit(page, "queue")}

        # Tab reaches the project, the tabs, a sort button and then the rows
        page.locator("body").focus()
        seen = tab_until(page, "el.dataset.project === 'show'")
        seen += tab_until(page, "el.id === 'tab-queue'")
        seen += tab_until(page, "el.matches('button.sort[data-sort=product]')")
        page.keyboard.press("Enter")
        expect(page.locator("th.col-product")).to_have_attribute("aria-sort", "ascending")
        seen += tab_until(page, "el.matches('#queue-body tr[data-id]')")
        first = page.evaluate("() => document.activeElement.dataset.id")
        # arrows move, Space selects, Enter opens the detail, Esc closes it and gives the focus back
        page.keyboard.press("ArrowDown")
        second = page.evaluate("() => document.activeElement.dataset.id")
        assert second != first
        page.keyboard.press("Space")
        expect(row(page, int(second))).to_have_attribute("aria-selected", "true")
        expect(page.locator("#selection-count")).to_have_text("1 selected")
        page.keyboard.press("Enter")
        detail = page.locator("[data-testid=detail]")
        expect(detail).to_be_visible()
        expect(page).to_have_url(re.compile(f"open={second}"))
        expect(page.locator("#detail-title")).to_be_focused()
        violations["detail"] = audit(page, "detail")
        page.keyboard.press("Escape")
        expect(detail).to_be_hidden()
        expect(row(page, int(second))).to_be_focused()
        page.keyboard.press("End")
        expect(page.locator("#queue-body tr").last).to_be_focused()

        # ? lists the shortcuts (a dialog), Esc closes it
        page.keyboard.press("?")
        help_dialog = page.locator("[data-testid=help]")
        expect(help_dialog).to_be_visible()
        expect(help_dialog).to_contain_text("open the row's detail")
        violations["help"] = audit(page, "help")
        shot(page, "keyboard-help")
        page.keyboard.press("Escape")
        expect(help_dialog).to_be_hidden()

        # a confirmation dialog
        page.click("[data-testid=action-remove]")
        expect(page.locator("[data-testid=modal]")).to_be_visible()
        violations["dialog"] = audit(page, "dialog")
        page.keyboard.press("Escape")

        # number keys switch the views; each view passes the audit
        for key, view in (("2", "events"), ("3", "sites"), ("4", "settings"), ("5", "workfiles")):
            page.locator("body").focus()
            page.keyboard.press(key)
            expect(page.locator(f"#view-{view}")).to_be_visible()
            expect(page.locator(f"#tab-{view}")).to_have_attribute("aria-selected", "true")
            page.wait_for_load_state("networkidle")
            violations[view] = audit(page, view)
        page.locator("body").focus()
        page.keyboard.press("1")
        page.keyboard.press("/")
        expect(page.locator("[data-testid=quick-filter]")).to_be_focused()
        assert not any(violations.values()), violations
        assert not w.problems and not w.foreign, (w.problems, w.foreign)
        page.close()


def test_nothing_is_requested_from_another_host_and_the_api_docs_render(
    browser: Browser, sqlite_studio: Studio
) -> None:
    cat = build_catalog(sqlite_studio)
    with served(sqlite_studio) as url:
        w: Watched = new_page(browser)
        page = w.page
        page.goto(url)
        expect(page.locator("#queue-body tr")).to_have_count(len(cat.reps), timeout=WAIT_MS)
        row(page, cat.reps["failed"]).locator("td.col-folder").click()
        for view in ("events", "sites", "settings", "workfiles", "queue"):
            page.click(f"[data-testid=tab-{view}]")
            page.wait_for_load_state("networkidle")
        page.keyboard.press("?")
        page.goto(url + "api/v1/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("sitesync", timeout=WAIT_MS)
        expect(page.locator(".opblock").first).to_be_visible()
        shot(page, "api-docs-offline")
        assert w.foreign == [], w.foreign
        assert any("/docs-assets/swagger-ui-bundle.js" in u for u in w.requested)
        assert not w.problems, w.problems
        page.close()
