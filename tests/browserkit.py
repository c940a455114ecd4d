"""Helpers for the dashboard's browser tests: Debian's Chromium driven by Playwright against a real
`sitesync serve` process, a record of every request the page makes (and a refusal of any that
leaves this machine), the axe-core accessibility audit run inside the page, and screenshots
under test-artifacts/."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from axe_playwright_python.base import AXE_FILE_PATH
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

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
# every `expect(...)` waits for its event up to WAIT_MS (Playwright's default is 5 s): under a
# parallel run on a loaded machine an answer can take longer; a passing check returns at once
expect.set_options(timeout=WAIT_MS)
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
# axe impacts that fail the audit
BLOCKING = {"serious", "critical"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"the browser tests need Debian's Chromium at {CHROMIUM}; scripts/test installs it")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@contextmanager
def served(studio: Studio, token: str | None = None, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """`sitesync serve --port 0` for the studio; yields the dashboard URL."""
    env = studio.env()
    env.pop("SITESYNC_TOKEN", None)
    if token:
        env["SITESYNC_TOKEN"] = token
    env.update(extra_env or {})
    proc = subprocess.Popen(
        # without a token the tests serve with --no-token (the login itself: tests/test_dashboard_login.py)
        [sys.executable, "-m", "sitesync", "serve", "--port", "0", "--log-level", "warning"]
        + ([] if token else ["--no-token"]),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        match = re.search(r"dashboard (http://[^/\s]+/)", line)
        assert match, line + proc.stderr.read()  # type: ignore[union-attr]
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


@dataclass
class Watched:
    """A page with what went wrong in it: script errors, and requests to other hosts (refused)."""

    page: Page
    problems: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)


def new_page(browser: Browser, width: int = 1500, height: int = 900) -> Watched:
    page = browser.new_page(viewport={"width": width, "height": height})
    watched = Watched(page)
    page.on("pageerror", lambda exc: watched.problems.append(f"page error: {exc}"))
    # refused requests (a 400 for an invalid setting...) are logged by the browser; the tests
    # check what the page shows for them, so only script errors count as problems here
    page.on(
        "console",
        lambda msg: (
            watched.problems.append(f"console: {msg.text}")
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )

    def route(route: Route) -> None:
        url = route.request.url
        watched.requested.append(url)
        host = urlsplit(url).hostname or ""
        if url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
            route.continue_()
        else:  # a studio without internet: nothing may depend on another host
            watched.foreign.append(url)
            route.abort()

    page.route("**/*", route)
    return watched


def row(page: Page, rep: int) -> Any:
    return page.locator(f"#queue-body tr[data-id='{rep}']")


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def audit(page: Page, name: str) -> list[dict[str, Any]]:
    """axe-core (shipped by the axe-playwright-python package) run in the page: the serious and
    critical violations. Every result is written to test-artifacts/axe-NAME.json."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_FILE_PATH.read_text(encoding="utf-8"))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"axe-{name}.json").write_text(json.dumps(result["violations"], indent=1), encoding="utf-8")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"][:5]]}
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]
