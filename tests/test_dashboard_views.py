"""The coordinator's views in Debian's Chromium against a real `sitesync serve`: the overview strip
(counts per state that filter on click, failures first, a state the page does not know yet, the
ETA of a slow transfer), deep links to every view state, the Sites view with numbers and the
conformance test, settings forms with provenance and server-side validation, bulk actions on
every match of a filter, the Events tab, and the small things (pause naming, toasts, next retry).
Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import re

from playwright.sync_api import Browser, Page, Route, expect

from tests.apikit import SECRET, build_catalog
from tests.browserkit import WAIT_MS, browser, new_page, row, served, shot
from tests.conftest import SITE_ID, Studio

__all__ = ["browser"]


def more_reps(studio: Studio, n: int) -> list[int]:
    """``n`` more representations, each one small file on the studio storage only."""
    out = []
    for i in range(n):
        path = studio.studio_file(f"show/extra/sh{i:03d}/take.exr", size=100 + i)
        out.append(studio.publish([path], site="studio", folder=f"extra/sh{i:03d}", product="extraMain", name="exr"))
    return out


def counts(page: Page) -> dict[str, int]:
    chips = page.locator("#overview-states button").all()
    return {c.get_attribute("data-state"): int(c.locator(".n").inner_text().replace(",", "")) for c in chips}


def test_overview_strip_filters_and_a_new_state_needs_no_ui_change(browser: Browser, sqlite_studio: Studio) -> None:
    cat = build_catalog(sqlite_studio)
    with served(sqlite_studio) as url:
        w = new_page(browser)
        page = w.page
        page.goto(url)
        expect(page.locator("#queue-body tr")).to_have_count(len(cat.reps), timeout=WAIT_MS)
        # failures first by default when there are failures
        expect(page.locator("#queue-body tr").first).to_have_attribute("data-id", str(cat.reps["failed"]))
        expect(page.locator("[data-testid=state-failed]")).to_contain_text("1")
        shown = counts(page)
        assert shown["failed"] == 1 and shown["paused"] == 1 and shown["in_progress"] == 1 and shown["lost"] == 0
        # the gravest first: a lost copy needs a person, a failure may still be retried
        assert list(shown)[:2] == ["lost", "failed"]
        expect(page.locator("[data-testid=overview-transfers]")).to_contain_text("3 files moving")
        page.click("[data-testid=state-paused]")
        expect(page.locator("#queue-body tr")).to_have_count(1, timeout=WAIT_MS)
        expect(row(page, cat.reps["paused"])).to_be_visible()
        expect(page).to_have_url(re.compile("status=paused"))
        expect(page.locator("[data-testid=state-paused]")).to_have_attribute("aria-pressed", "true")
        page.click("[data-testid=state-paused]")
        expect(page.locator("#queue-body tr")).to_have_count(len(cat.reps), timeout=WAIT_MS)

        # the server reports a state this page has never heard of (and "lost"): both show
        def more_states(route: Route) -> None:
            response = route.fetch()
            data = response.json()
            data["states"] += [{"state": "lost", "count": 2}, {"state": "quarantined", "count": 4}]
            data["states"] = [s for s in data["states"] if s["state"] != "lost" or s["count"]]
            route.fulfill(response=response, body=json.dumps(data))

        page.route(re.compile(r".*/api/v1/projects/show/overview$"), more_states)
        page.reload()
        expect(page.locator("[data-testid=state-quarantined]")).to_contain_text("4", timeout=WAIT_MS)
        expect(page.locator("[data-testid=state-lost]")).to_contain_text("2")
        shot(page, "overview-new-states")
        assert not w.problems and not w.foreign
        page.close()


def test_eta_of_a_slow_transfer(browser: Browser, sqlite_studio: Studio) -> None:
    """A download read from a slow archive (the fault-injecting provider throttles its reads): the
    strip shows the bytes done and an ETA while it moves."""
    c = sqlite_studio.client
    c.add_site(
        "archive",
        "faulty",
        roots=[f"work={sqlite_studio.root / 'archive'}"],
        options={"inner": "local_drive", "inner_options": {"create_roots": True}, "slow_read_bytes_per_second": 40_000},
    )
    rep = sqlite_studio.publish([sqlite_studio.write("big.exr", size=400_000)], site="archive")
    c.settings_set("remote_site", "archive", project="show")
    with served(sqlite_studio) as url:
        page = new_page(browser).page
        page.goto(url)
        expect(row(page, rep)).to_be_visible(timeout=WAIT_MS)
        page.locator("body").focus()
        row(page, rep).locator("input[type=checkbox]").check()
        page.click("[data-testid=action-download]")
        transfers = page.locator("[data-testid=overview-transfers]")
        expect(transfers).to_contain_text("1 file moving", timeout=WAIT_MS)
        expect(transfers).to_contain_text("of 390.6 KiB done")
        expect(transfers).to_contain_text("left", timeout=WAIT_MS)
        eta = int(transfers.get_attribute("data-eta") or 0)
        assert 0 < eta <= 60, eta
        shot(page, "overview-eta")
        expect(row(page, rep)).to_have_attribute("data-active", "present", timeout=WAIT_MS)
        page.close()


def test_deep_links_keep_every_view_state(browser: Browser, sqlite_studio: Studio) -> None:
    cat = build_catalog(sqlite_studio)
    extra = more_reps(sqlite_studio, 30)
    total = len(cat.reps) + len(extra)
    target = extra[-1]
    with served(sqlite_studio) as url:
        page = new_page(browser).page
        # a link pasted in chat: page 2 of 25 rows, sorted by id, one representation open on its files
        page.goto(f"{url}#project=show&sort=id&rows=25&page=2&open={target}&dtab=files")
        expect(page.locator("#page-info")).to_have_text(f"26\u2013{total} of {total}", timeout=WAIT_MS)
        expect(page.locator("[data-testid=detail]")).to_be_visible()
        expect(page.locator("[data-testid=dtab-files]")).to_have_attribute("aria-selected", "true")
        expect(page.locator("[data-testid=detail-files] tr")).to_have_count(1)
        expect(page.locator("th.col-check ~ th.sorted")).to_have_count(0)  # id is not a column
        expect(row(page, target)).to_have_class(re.compile("open"))
        # the link the panel offers opens the same representation
        page.click("[data-testid=detail-link]")
        link = page.locator("[data-testid=detail-link-text]")
        if link.count():
            assert f"open={target}" in (link.input_value() or "")
            page.keyboard.press("Escape")
        # moving around writes the URL; Back walks back
        page.click("[data-testid=dtab-history]")
        expect(page).to_have_url(re.compile("dtab=history"))
        page.click("[data-testid=detail-close]")
        expect(page).not_to_have_url(re.compile("open="))
        page.go_back()
        expect(page.locator("[data-testid=detail]")).to_be_visible()
        page.click("[data-page=first]")
        expect(page).not_to_have_url(re.compile("page="))
        page.go_back()
        expect(page.locator("#page-info")).to_have_text(f"26\u2013{total} of {total}")
        # an event's representation links to its detail
        page.goto(f"{url}#project=show&tab=events&ekind=failure")
        link = page.locator("[data-testid=event-rep]").first
        expect(link).to_contain_text("seq02/sh110 / plateMain / v001 / exr", timeout=WAIT_MS)
        link.click()
        expect(page.locator("#view-queue")).to_be_visible()
        expect(page.locator("#detail-title")).to_have_text("seq02/sh110 / plateMain / v001 / exr")
        page.close()


def test_sites_view_numbers_space_backoff_and_test(browser: Browser, sqlite_studio: Studio) -> None:
    cat = build_catalog(sqlite_studio)
    c = sqlite_studio.client
    c.add_site("cloud", "memory", options={"namespace": "cloud", "token": SECRET})
    # a vendor's storage that is not mounted: the served worker backs off from it
    c.add_site("vendor", "local_drive", roots=[f"work={sqlite_studio.root / 'not-mounted'}"])
    c.settings_set("always_accessible_on", "vendor", project="show")
    sqlite_studio.publish([sqlite_studio.write("c.bin", b"c")], site="studio")
    with served(sqlite_studio) as url:
        w = new_page(browser)
        page = w.page
        page.goto(url + "#project=show&tab=sites")
        here = page.locator(f"[data-testid=site-{SITE_ID}]")
        expect(here).to_contain_text("failed", timeout=WAIT_MS)
        numbers = here.locator("table.nums")
        expect(numbers.locator("tr", has_text="failed")).to_contain_text("512 B")
        expect(here).to_contain_text("a different file is already at")
        expect(here.locator(f"a[href*='open={cat.reps['failed']}']").first).to_be_visible()
        expect(page.locator("[data-testid=space-studio]")).to_contain_text("free of", timeout=WAIT_MS)
        expect(page.locator("[data-testid=site-cloud]")).to_contain_text("the provider cannot tell")
        page.wait_for_timeout(0)
        page.goto(url + "#project=show&tab=queue")
        page.goto(url + "#project=show&tab=sites")
        expect(page.locator("[data-testid=health-vendor]")).to_contain_text("unreachable, tried again", timeout=WAIT_MS)
        expect(page.locator("[data-testid=health-vendor]")).to_contain_text("not mounted?")
        expect(page.locator("[data-testid=health-studio]")).to_have_text(re.compile(r"^reachable \("))
        shot(page, "sites-numbers")
        # Test site: the conformance suite's table
        page.click("[data-testid=test-studio]")
        table = page.locator("[data-testid=site-test-table]")
        expect(table).to_be_visible(timeout=WAIT_MS)
        expect(table.locator("tr[data-check=write_read_roundtrip]")).to_contain_text("ok")
        expect(page.locator("[data-testid=site-test-summary]")).to_contain_text("0 failed")
        shot(page, "sites-test")
        page.click("[data-testid=modal-ok]")
        assert SECRET not in page.content()
        assert not w.problems and not w.foreign
        page.close()


def field(page: Page, key: str):  # type: ignore[no-untyped-def]
    return page.locator(f"[data-testid='field-{key}']")


def test_settings_forms_with_provenance_validation_and_write_only_secrets(
    browser: Browser, sqlite_studio: Studio
) -> None:
    build_catalog(sqlite_studio)
    c = sqlite_studio.client
    c.add_site("cloud", "memory", options={"namespace": "cloud", "token": SECRET})
    with served(sqlite_studio) as url:
        w = new_page(browser)
        page = w.page
        page.goto(url + "#project=show&tab=settings")
        loop = field(page, "loop_delay")
        expect(loop.locator("[data-testid=source]")).to_have_text("from project", timeout=WAIT_MS)
        min_copies = field(page, "min_copies")
        expect(min_copies.locator("[data-testid=source]")).to_have_text("default")
        expect(min_copies).to_contain_text("Verified copies that must remain")
        expect(min_copies.locator("input[type=number]")).to_have_attribute("min", "1")
        # refused on the server: shown beside the field, nothing stored
        retry = field(page, "retry_count")
        retry.locator("[data-input]").fill("0")
        retry.locator("button[data-save]").click()
        expect(retry.locator(".error")).to_contain_text("retry_count")
        assert c.settings_show("show", effective=True)["settings"]["retry_count"] == 1
        # saved to the default project: inherited, and shown as such
        min_copies.locator("[data-input]").fill("2")
        min_copies.locator("select[data-layer]").select_option("default project")
        min_copies.locator("button[data-save]").click()
        expect(field(page, "min_copies").locator("[data-testid=source]")).to_have_text("from default project")
        assert c.settings_show("show", effective=True)["settings"]["min_copies"] == 2
        # this machine's choice of active site wins over the project's
        active = field(page, "active_site")
        active.locator("[data-input]").select_option("studio")
        active.locator("select[data-layer]").select_option("this machine")
        active.locator("button[data-save]").click()
        expect(field(page, "active_site").locator("[data-testid=source]")).to_have_text("from this machine")
        expect(field(page, "active_site").locator("[data-testid=source]")).to_have_attribute(
            "title", re.compile("project: local → this machine: studio")
        )
        # and Reset gives the project's back
        field(page, "active_site").locator("button[data-reset]").click()
        expect(field(page, "active_site").locator("[data-testid=source]")).to_have_text("from project")
        # a secret: only whether it is set; a new one can be written, never read
        token = field(page, "sites.cloud.options.token")
        expect(token.locator("[data-testid=source]")).to_have_text("set in system")
        expect(token.locator("input[type=password]")).to_have_value("")
        token.locator("input[type=password]").fill("NEW-SECRET-VALUE-42")
        token.locator("button[data-save]").click()
        expect(page.locator("[data-testid=toast-ok]").last).to_contain_text("sites.cloud.options.token saved")
        assert c.documents().system["sites"]["cloud"]["options"]["token"] == "NEW-SECRET-VALUE-42"
        page.wait_for_load_state("networkidle")
        assert SECRET not in page.content() and "NEW-SECRET-VALUE-42" not in page.content()
        shot(page, "settings-forms")
        assert not w.problems and not w.foreign
        page.close()


def test_bulk_action_on_every_match_and_selection_after_an_action(browser: Browser, sqlite_studio: Studio) -> None:
    cat = build_catalog(sqlite_studio)
    extra = more_reps(sqlite_studio, 30)
    with served(sqlite_studio) as url:
        page = new_page(browser).page
        page.goto(f"{url}#project=show&q=extraMain&rows=25")
        expect(page.locator("#page-info")).to_have_text("1\u201325 of 30", timeout=WAIT_MS)
        page.check("[data-testid=select-all]")
        matching = page.locator("[data-testid=select-matching]")
        expect(matching).to_have_text("Select all 30 matching")
        matching.click()
        expect(page.locator("#selection-count")).to_have_text("All 30 representations matching")
        page.click("[data-testid=action-priority]")
        page.fill("[data-testid=priority-input]", "123")
        page.click("[data-testid=modal-ok]")
        expect(page.locator("[data-testid=toast-ok]").last).to_contain_text("30 representations given the new priority")
        page_of_all = sqlite_studio.client.sync_queue("show", text="extraMain", limit=100)
        assert {x.id for x in page_of_all.items} == set(extra)  # every page, not only the one shown
        assert {x.priority for x in page_of_all.items} == {123}
        # an action that takes rows out of the filter: the selection keeps only rows still shown
        page.goto(f"{url}#project=show&active_status=none")
        expect(page.locator("#queue-body tr")).to_have_count(3 + len(extra), timeout=WAIT_MS)
        for rep in (cat.reps["studio_only_a"], cat.reps["hero"]):
            row(page, rep).locator("input[type=checkbox]").check()
        expect(page.locator("#selection-count")).to_have_text("2 selected")
        page.click("[data-testid=action-download]")
        expect(page.locator("[data-testid=toast-ok]").last).to_contain_text("2 representations queued for download")
        expect(row(page, cat.reps["hero"])).to_have_count(0, timeout=WAIT_MS)
        expect(page.locator("#selectionbar")).to_be_hidden()
        page.close()


def test_events_tab(browser: Browser, sqlite_studio: Studio) -> None:
    cat = build_catalog(sqlite_studio)
    c = sqlite_studio.client
    c.pause(representation=cat.reps["queued"])
    with served(sqlite_studio) as url:
        page = new_page(browser).page
        page.goto(f"{url}#project=show&tab=events")
        body = page.locator("#events-body")
        pause = body.locator("tr[data-kind=pause]").first
        expect(pause).to_contain_text("seq02/sh100 / cacheMain / v004 / abc", timeout=WAIT_MS)
        expect(pause).to_contain_text(SITE_ID)
        expect(pause).to_contain_text("@")  # the actor: user@machine
        # filters by kind, site and representation, kept in the URL
        page.select_option("[data-testid=events-kind]", "failure")
        failure = body.locator("tr[data-kind=failure]").first
        expect(failure).to_be_visible()
        expect(body.locator("tr[data-kind=pause]")).to_have_count(0)
        expect(page).to_have_url(re.compile("ekind=failure"))
        # a long message is cut to two lines and expands
        expect(failure.locator(".msg")).not_to_have_class(re.compile("expanded"))
        failure.locator("button.toggle").click()
        expect(failure.locator(".msg")).to_have_class(re.compile("expanded"))
        page.select_option("[data-testid=events-kind]", "")
        page.select_option("[data-testid=events-site]", "studio")
        expect(page).to_have_url(re.compile("esite=studio"))
        expect(body.locator("tr td:nth-child(4)").filter(has_not_text="studio")).to_have_count(0)
        expect(body.locator("tr td:nth-child(4)").first).to_contain_text("studio")
        page.select_option("[data-testid=events-site]", "")
        page.fill("[data-testid=events-rep]", str(cat.reps["paused"]))
        expect(page).to_have_url(re.compile(f"erep={cat.reps['paused']}"))
        expect(body.locator("tr[data-kind=pause]")).to_have_count(1)
        shot(page, "events")
        page.close()


def test_small_things(browser: Browser, sqlite_studio: Studio) -> None:
    """The next retry shown is the queue's, pause switches and banner are named the same way,
    and toasts are plain words, clear of the pager."""
    cat = build_catalog(sqlite_studio)
    c = sqlite_studio.client
    c.settings_set("min_copies", 2, project="show")
    c.settings_set("retry_count", 3, project="show")
    c.settings_set("retry_backoff", 2, project="show")
    # a site whose writes fail (transiently): the upload waits for its retry
    c.add_site(
        "flaky",
        "faulty",
        [f"work={sqlite_studio.root / 'flaky'}"],
        {
            "inner": "local_drive",
            "inner_options": {"create_roots": True},
            "transient_rate": 1.0,
            "operations": ["write"],
        },
    )
    path = sqlite_studio.studio_file("show/retry/r.bin", size=300)
    retried = sqlite_studio.publish([path], site="studio", folder="retry/sh001")
    c.upload(retried, "flaky")
    sqlite_studio.sync()
    c.pause(worker=True)  # the served worker leaves it waiting
    replica = next(r for r in c.representation_detail(retried)["files"][0]["replicas"] if r["site"] == "flaky")
    assert replica["status"] == "queued" and replica["attempts"] == 1
    with served(sqlite_studio) as url:
        w = new_page(browser)
        page = w.page
        page.goto(f"{url}#project=show&open={retried}&dtab=files")
        shown = page.locator("[data-testid=next-retry]")
        expect(shown).to_have_count(1, timeout=WAIT_MS)
        detail = c.sync_queue_detail(retried)
        due = next(r for r in detail["files"][0]["replicas"] if r["site"] == "flaky")["next_attempt_at"]
        assert float(shown.get_attribute("data-at") or 0) == due
        expect(shown).to_contain_text("next try")
        page.click("[data-testid=detail-close]")

        banner = page.locator("[data-testid=pause-banner]")
        expect(banner).to_contain_text("Paused: this machine (by ")
        expect(page.locator("[data-testid=worker-toggle]")).to_have_text("Resume this machine")
        page.click("[data-testid=pause-all]")
        expect(banner).to_contain_text("Paused: everything (by ")
        expect(banner).to_contain_text("· this machine (by ")
        expect(page.locator("[data-testid=pause-all]")).to_have_text("Resume everything")
        page.click("[data-testid=pause-all]")
        page.click("[data-testid=worker-toggle]")
        expect(banner).to_be_hidden()
        expect(page.locator("[data-testid=pause-all]")).to_have_text("Pause everything")
        expect(page.locator("[data-testid=worker-toggle]")).to_have_text("Pause this machine")

        # a refusal in plain words, clear of the pager
        both = cat.reps["both_a"]
        page.fill("[data-testid=quick-filter]", "animMain")
        expect(row(page, both)).to_be_visible(timeout=WAIT_MS)
        row(page, both).locator("input[type=checkbox]").check()
        page.click("[data-testid=action-remove]")
        page.click("[data-testid=modal-ok]")
        refusal = page.locator("[data-testid=toast-error]").last
        expect(refusal).to_contain_text(
            "1 representation was not removed: refused: removing the copy of representation"
        )
        text = refusal.inner_text()
        assert "''" not in text and "{root[" not in text and '""' not in text, text
        toast_box, pager = refusal.bounding_box(), page.locator("[data-testid=pager]").bounding_box()
        assert toast_box and pager and toast_box["y"] + toast_box["height"] <= pager["y"], (toast_box, pager)
        shot(page, "toast-clear-of-pager")
        assert not w.problems and not w.foreign
        page.close()
