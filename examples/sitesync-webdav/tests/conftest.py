"""A real WebDAV server for the tests: WsgiDAV on cheroot, on a free loopback port, serving a fresh
folder per test, with basic authentication (user ``artist``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cheroot import wsgi
from wsgidav.wsgidav_app import WsgiDAVApp

USER, PASSWORD = "artist", "dav-test-password"


@dataclass
class DavServer:
    url: str
    folder: Path  # what the share holds, as plain files

    def options(self, **extra: object) -> dict[str, object]:
        return {"url": self.url, "user": USER, "password": PASSWORD, **extra}


@pytest.fixture
def dav_server(tmp_path: Path) -> Iterator[DavServer]:
    folder = tmp_path / "share"
    (folder / "projects").mkdir(parents=True)  # the root the tests' sites use
    app = WsgiDAVApp(
        {
            "provider_mapping": {"/": str(folder)},
            "simple_dc": {"user_mapping": {"*": {USER: {"password": PASSWORD}}}},
            "http_authenticator": {"accept_basic": True, "accept_digest": False, "default_to_digest": False},
            "verbose": 1,
            "logging": {"enable_loggers": []},
            "dir_browser": {"enable": False},
        }
    )
    server = wsgi.Server(("127.0.0.1", 0), app, numthreads=8)
    server.prepare()  # binds: port 0 picks a free port, safe under parallel test workers
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield DavServer(f"http://127.0.0.1:{server.bind_addr[1]}", folder)
    finally:
        server.stop()
        thread.join(10)
