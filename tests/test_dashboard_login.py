"""The dashboard's login in a real browser (Debian's Chromium through Playwright) against a real
`sitesync serve` that requires its token: the one-time link `serve` prints logs the browser in with
a cookie page scripts cannot read; the same link a second time, or a wrong token, says why in the
login dialog; the token itself logs in too."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.browserkit import WAIT_MS
from tests.browserkit import browser as browser  # the browser fixture
from tests.conftest import Studio
from tests.serving import serving


def test_login_link_once_then_token_refused_then_token(browser: Browser, sqlite_studio: Studio) -> None:
    with serving(sqlite_studio) as served:
        first = browser.new_context()
        page = first.new_page()
        page.goto(served.dashboard)
        expect(page.locator("[data-testid=machine]")).to_have_text("ws-test", timeout=WAIT_MS)
        expect(page.locator("[data-testid=modal]")).to_be_hidden()
        # the code leaves the address bar (the dashboard may already have put its view state after "#")
        assert page.url.split("#")[0] == served.base + "/", "the code leaves the address bar"
        assert "code=" not in page.url
        assert "sitesync_session" not in page.evaluate("document.cookie"), "HttpOnly: scripts cannot read it"
        [cookie] = [c for c in first.cookies() if c["name"] == "sitesync_session"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        first.close()

        second = browser.new_context()
        page = second.new_page()
        page.goto(served.dashboard)  # the same link again, elsewhere
        modal = page.locator("[data-testid=modal]")
        expect(modal).to_contain_text("This server needs a token", timeout=WAIT_MS)
        expect(page.locator("[data-testid=token-refused]")).to_have_text(
            "this login link was already used or has expired: ask for a new one with `sitesync dashboard`"
        )
        page.fill("[data-testid=token-input]", "not-the-token")
        page.click("[data-testid=modal-ok]")
        expect(page.locator("[data-testid=token-refused]")).to_have_text(
            "token refused: that is not this server's token"
        )
        token = (sqlite_studio.home / "config" / "api_token").read_text().strip()
        page.fill("[data-testid=token-input]", token)
        page.click("[data-testid=modal-ok]")
        expect(page.locator("[data-testid=machine]")).to_have_text("ws-test", timeout=WAIT_MS)
        assert "sitesync_session" not in page.evaluate("document.cookie + JSON.stringify(sessionStorage)")
        assert token not in page.evaluate("JSON.stringify(sessionStorage) + JSON.stringify(localStorage)")
        second.close()
