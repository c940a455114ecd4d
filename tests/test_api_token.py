"""Loopback is not a trust boundary: `sitesync serve` requires a token by default, generated once
into this machine's config folder (0600); the command line and the Python client find it and the
server by themselves; the dashboard logs in through one-time login links that set an HttpOnly,
SameSite=Strict session cookie, or by trading the token itself; `--no-token` is loopback only
and loud."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest

from sitesync.api.app import create_app
from sitesync.api.auth import (
    LOGIN_CODE_SECONDS,
    SESSION_COOKIE,
    SESSION_SECONDS,
    LoginCodes,
    session_valid,
    session_value,
)
from sitesync.api.remote import ApiClient
from sitesync.errors import ForbiddenError
from tests.apikit import TOKEN, api_client
from tests.conftest import Studio
from tests.serving import serving

API = "/api/v1"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_serve_requires_a_token_by_default_and_everything_finds_it(sqlite_studio: Studio) -> None:
    token_file = sqlite_studio.home / "config" / "api_token"
    assert not token_file.exists()
    with serving(sqlite_studio) as served:
        assert "token required" in served.line and "/login?code=" in served.dashboard
        assert token_file.exists() and _mode(token_file) == 0o600 and _mode(token_file.parent) == 0o700
        token = token_file.read_text().strip()
        assert len(token) >= 40 and token not in served.line
        with httpx.Client(base_url=served.base + API, timeout=30) as http:
            refused = http.get("/projects")
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
            assert http.get("/projects", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        # the command line and the Python client pick up the token file (and find the server)
        assert sqlite_studio.cli("token", "show", check=True).stdout.strip() == token
        with ApiClient(home=str(sqlite_studio.home)) as api:
            assert api.url == served.base + "/"
            assert [p["name"] for p in api.get("/projects")] == ["show"]
        printed = sqlite_studio.cli("dashboard", check=True)
        link = printed.stdout.strip()
        assert link.startswith(served.base + "/login?code=") and "valid once, for 15 minutes" in printed.stderr
        for url in (served.dashboard, link):
            with httpx.Client(timeout=30) as browser:
                first = browser.get(url)
                assert first.status_code == 303 and first.headers["location"] == "/"
                cookie = first.headers["set-cookie"]
                assert f"{SESSION_COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
                assert f"Max-Age={SESSION_SECONDS}" in cookie
                assert first.headers["cache-control"] == "no-store"
                assert browser.get(served.base + API + "/projects").status_code == 200, "the cookie logs in"
            with httpx.Client(timeout=30) as again:
                second = again.get(url)
                assert second.status_code == 303 and second.headers["location"] == "/#login-refused"
                assert "set-cookie" not in second.headers, "a login link works once"
                assert again.get(served.base + API + "/projects").status_code == 401
    assert not (sqlite_studio.home / "data" / "serve.json").exists(), "the runtime file goes with the server"


def test_a_wrong_token_is_one_line_for_the_command_line_and_the_client(sqlite_studio: Studio) -> None:
    with serving(sqlite_studio, env={"SITESYNC_TOKEN": TOKEN}) as served:
        proc = sqlite_studio.cli("dashboard", "--url", served.base, "--token", "wrong")
        assert proc.returncode == 2 and proc.stderr.splitlines() == [
            f"error: the server at {served.base}/ refused the given token: give its token with --token or "
            "SITESYNC_TOKEN (`sitesync token show` on the server's machine, as the user who runs it)"
        ]
        proc = sqlite_studio.cli("dashboard", "--url", served.base)  # this user has no token file
        assert proc.returncode == 2 and proc.stderr.splitlines() == [
            f"error: the server at {served.base}/ needs a token and this user has none: give it with --token or "
            "SITESYNC_TOKEN (`sitesync token show` on the server's machine, as the user who runs it)"
        ]
        with pytest.raises(ForbiddenError, match="refused the given token"), ApiClient(served.base, "wrong") as api:
            api.get("/projects")
        with ApiClient(served.base, TOKEN) as api:
            assert api.get("/health")["auth"] is True


def test_no_token_is_loopback_only_and_loud(sqlite_studio: Studio) -> None:
    with serving(sqlite_studio, "--no-token") as served:
        assert "no token: every local user can use it" in served.line
        assert httpx.get(served.base + API + "/projects", timeout=30).status_code == 200
        served.proc.terminate()
        served.proc.wait(timeout=60)
        err = served.proc.stderr.read() if served.proc.stderr else ""
    assert "serving WITHOUT A TOKEN (--no-token): every user and process of this machine can" in err
    both = sqlite_studio.cli("serve", "--no-token", "--token", "x", "--port", "0")
    assert both.returncode == 2 and both.stderr.splitlines() == [
        "error: --no-token and --token (or SITESYNC_TOKEN) contradict each other; choose one"
    ]


def test_sessions_and_login_links(sqlite_studio: Studio) -> None:
    with api_client(sqlite_studio, token=TOKEN) as http:
        anonymous = {"Authorization": ""}
        wrong = http.post(f"{API}/auth/session", json={"token": "guess"}, headers=anonymous)
        assert wrong.status_code == 401 and wrong.json()["detail"].startswith("token refused")
        # a page elsewhere cannot log the browser into this server (login CSRF)
        elsewhere = http.post(
            f"{API}/auth/session", json={"token": TOKEN}, headers={**anonymous, "Origin": "http://evil.example"}
        )
        assert elsewhere.status_code == 403
        cookies = httpx.Cookies()
        ok = http.post(f"{API}/auth/session", json={"token": TOKEN}, headers=anonymous)
        assert ok.status_code == 200 and ok.json() == {"auth": True, "expires_in": SESSION_SECONDS}
        cookies.set(SESSION_COOKIE, ok.cookies[SESSION_COOKIE])
        http.cookies = cookies
        assert http.get(f"{API}/projects", headers=anonymous).status_code == 200
        # a cookie made with another token, or forged, or expired, opens nothing
        for value in (session_value("another-token"), "99999999999.abc", session_value(TOKEN, now=0)):
            http.cookies = httpx.Cookies({SESSION_COOKIE: value})
            assert http.get(f"{API}/projects", headers=anonymous).status_code == 401, value
        http.cookies = cookies
        out = http.request("DELETE", f"{API}/auth/session", json={}, headers=anonymous)
        assert out.status_code == 200 and 'sitesync_session=""' in out.headers["set-cookie"]
        link = http.post(f"{API}/auth/login-links", json={})
        assert link.status_code == 200 and link.json()["expires_in"] == LOGIN_CODE_SECONDS
        assert link.json()["url"].startswith("http://127.0.0.1/login?code=")
        http.cookies = httpx.Cookies()
        assert http.post(f"{API}/auth/login-links", json={}, headers=anonymous).status_code == 401


def test_login_codes_work_once_and_expire() -> None:
    now = [1000.0]
    codes = LoginCodes(clock=lambda: now[0])
    first, second = codes.issue(), codes.issue()
    assert codes.redeem(first) and not codes.redeem(first)
    now[0] += LOGIN_CODE_SECONDS + 1
    assert not codes.redeem(second), "an unused link expires"
    assert not codes.redeem("made-up")
    assert session_valid(session_value("t", now=now[0]), "t", now=now[0] + SESSION_SECONDS - 1)
    assert not session_valid(session_value("t", now=now[0]), "t", now=now[0] + SESSION_SECONDS + 1)


def test_loopback_host_names_only_with_a_token_too(sqlite_studio: Studio) -> None:
    app = create_app(sqlite_studio.client, token=TOKEN, allowed_hosts=["127.0.0.1", "localhost", "::1"])
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        assert http.get(f"{API}/health").status_code == 200
        assert http.get(f"{API}/health", headers={"Host": "evil.example:8765"}).status_code == 403


def test_the_token_file_goes_to_loopback_only(sqlite_studio: Studio) -> None:
    sqlite_studio.cli("token", "show", check=True)
    with ApiClient("http://127.0.0.1:9", home=str(sqlite_studio.home)) as local:
        assert local.token is not None
    with ApiClient("http://files.studio.example:8765", home=str(sqlite_studio.home)) as remote:
        assert remote.token is None, "this machine's token is never sent to another machine"


def test_a_new_token_ends_the_old_one(sqlite_studio: Studio) -> None:
    old = sqlite_studio.cli("token", "show", check=True).stdout.strip()
    renewed = sqlite_studio.cli("token", "new", check=True)
    assert "restart `sitesync serve`" in renewed.stdout
    new = sqlite_studio.cli("token", "show", check=True).stdout.strip()
    assert new != old and old not in renewed.stdout + renewed.stderr and new not in renewed.stdout
    with serving(sqlite_studio) as served:
        assert httpx.get(served.base + API + "/projects", headers={"Authorization": f"Bearer {old}"}).status_code == 401
        assert httpx.get(served.base + API + "/projects", headers={"Authorization": f"Bearer {new}"}).status_code == 200
