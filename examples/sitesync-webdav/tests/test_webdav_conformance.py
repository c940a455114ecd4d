"""The sitesync provider contract, item by item, against a real WebDAV server (``sitesync.testing``),
plus what the contract suite cannot see: errors mapped to their meaning."""

from __future__ import annotations

import pytest
from sitesync_webdav import WebDAVProvider

from conftest import DavServer
from sitesync.errors import PermanentStorageError, SiteUnavailableError
from sitesync.testing import provider_conformance_tests


def make_provider(dav_server: DavServer) -> WebDAVProvider:
    return WebDAVProvider.from_options("dav", dav_server.options(), {"work": "/projects"})  # type: ignore[return-value]


test_conformance = provider_conformance_tests(make_provider)


def test_the_provider_is_registered() -> None:
    from sitesync.providers.registry import provider_class, provider_names

    assert "webdav" in provider_names() and provider_class("webdav") is WebDAVProvider
    assert WebDAVProvider.supported_capabilities() == frozenset()


def test_files_land_as_plain_files_under_their_names(dav_server: DavServer) -> None:
    provider = make_provider(dav_server)
    provider.write_small("/projects/show/sh010/f 1.exr", b"frame")
    assert (dav_server.folder / "projects" / "show" / "sh010" / "f 1.exr").read_bytes() == b"frame"
    assert [e.path for e in provider.list("/projects")] == ["/projects/show/sh010/f 1.exr"]
    assert list(dav_server.folder.rglob(".sitesync-*")) == []


def test_wrong_password_makes_the_site_unavailable(dav_server: DavServer) -> None:
    provider = WebDAVProvider.from_options("dav", dav_server.options(password="wrong"), {"work": "/projects"})
    with pytest.raises(SiteUnavailableError, match="refused the credentials") as info:
        provider.check()
    assert "wrong" not in str(info.value)


def test_a_stopped_server_makes_the_site_unavailable() -> None:
    provider = WebDAVProvider.from_options("dav", {"url": "http://127.0.0.1:9"}, {"work": "/projects"})
    with pytest.raises(SiteUnavailableError, match="cannot connect"):
        provider.check()


def test_a_missing_root_makes_the_site_unavailable(dav_server: DavServer) -> None:
    provider = WebDAVProvider.from_options("dav", dav_server.options(), {"work": "/elsewhere"})
    with pytest.raises(SiteUnavailableError, match="root folder /elsewhere does not exist on the share"):
        provider.check()
    assert not (dav_server.folder / "elsewhere").exists()


def test_reading_a_missing_file_fails_for_good(dav_server: DavServer) -> None:
    with pytest.raises(PermanentStorageError, match="404"):
        make_provider(dav_server).open_read("/projects/none.bin")
