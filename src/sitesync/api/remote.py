"""A Python client of a running ``sitesync serve``'s REST API that finds the server and its token by
itself.

    from sitesync.api.remote import ApiClient
    with ApiClient() as api:                      # this machine's server and token
        api.get("/projects")
        api.post("/representations/12/download", {"site": "local"})

The URL is ``url``, else ``SITESYNC_URL``, else where this machine's running ``serve`` said it
listens (``serve.json`` in the data folder), else ``http://127.0.0.1:8765/``. The token is
``token``, else ``SITESYNC_TOKEN``, else this machine's token file (readable by the user who runs
the server only; sent to a loopback address only, never to another machine). Errors are sitesync's
own, one line each.
"""

from __future__ import annotations

import json
import os
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from sitesync.api.auth import read_token
from sitesync.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    InvalidSettingError,
    NotFoundError,
    SitesyncError,
)
from sitesync.settings.machine import MachinePaths, machine_paths

DEFAULT_URL = "http://127.0.0.1:8765/"
API_PREFIX = "/api/v1"


def server_url(paths: MachinePaths) -> str:
    """Where this machine's API is: ``SITESYNC_URL``, the running server's file, or the default."""
    explicit = os.environ.get("SITESYNC_URL")
    if explicit:
        return explicit
    try:
        recorded = json.loads((paths.data_dir / "serve.json").read_text(encoding="utf-8"))
        url = recorded.get("url")
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            return url
    except (OSError, ValueError, AttributeError):
        pass
    return DEFAULT_URL


class ApiClient:
    """Calls to one server's ``/api/v1`` with its token."""

    def __init__(
        self, url: str | None = None, token: str | None = None, *, home: str | None = None, timeout: float = 30.0
    ) -> None:
        paths = machine_paths(home)
        self.token: str | None
        self.url = (url or server_url(paths)).rstrip("/") + "/"
        if token:
            self.token, self.token_source = token, "the given token"
        elif os.environ.get("SITESYNC_TOKEN"):
            self.token, self.token_source = os.environ["SITESYNC_TOKEN"], "the token of SITESYNC_TOKEN"
        else:  # this machine's token file: only ever sent to this machine
            self.token = read_token(paths) if _loopback(self.url) else None
            self.token_source = "this machine's token file"
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self._http = httpx.Client(base_url=self.url.rstrip("/") + API_PREFIX, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        """One API call; the decoded JSON answer, or a sitesync error with the server's message."""
        kwargs: dict[str, Any] = {"params": params}
        if method.upper() != "GET":
            kwargs["json"] = body if body is not None else {}
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError:
            raise SitesyncError(
                f"no sitesync server answers at {self.url}; start one with `sitesync serve`, or give its "
                "address (--url or SITESYNC_URL)"
            ) from None
        if response.is_success:
            return response.json() if response.content else None
        try:
            detail = response.json().get("detail") or response.text
        except ValueError:
            detail = response.text or response.reason_phrase
        raise _error_for(response.status_code, str(detail), self)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body)

    def put(self, path: str, body: Any = None) -> Any:
        return self.request("PUT", path, body)

    def login_link(self) -> dict[str, Any]:
        """A one-time dashboard login link: ``{"url": ..., "expires_in": seconds}``."""
        return self.post("/auth/login-links")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _loopback(url: str) -> bool:
    from sitesync.api.server import is_loopback

    return is_loopback(urlsplit(url).hostname or "")


def _error_for(status: int, detail: str, client: ApiClient) -> SitesyncError:
    if status == 401:
        return ForbiddenError(
            f"the server at {client.url} refused {client.token_source}: give its token with --token or "
            "SITESYNC_TOKEN (`sitesync token show` on the server's machine, as the user who runs it)"
            if client.token
            else f"the server at {client.url} needs a token and this user has none: give it with --token or "
            "SITESYNC_TOKEN (`sitesync token show` on the server's machine, as the user who runs it)"
        )
    if status == 403:
        return ForbiddenError(detail)
    if status == 404:
        return NotFoundError(detail)
    if status == 409:
        return ConflictError(detail)
    if status == 422:
        return InvalidSettingError(detail)
    if status in (400, 415):
        return InvalidInputError(detail)
    return SitesyncError(f"the server answered {status}: {detail}")


__all__ = ["DEFAULT_URL", "ApiClient", "server_url"]
