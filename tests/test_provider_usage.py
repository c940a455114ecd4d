"""The optional ``usage()`` capability: free and total space where the storage can tell (local
drives by ``statvfs``; Google Drive and Dropbox quotas are tested with their fakes), none for S3."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sitesync.errors import SiteUnavailableError
from sitesync.providers.base import CAP_USAGE, Provider
from sitesync.providers.registry import provider_class


def test_local_drive_reports_its_file_system(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "publish").mkdir()
    provider = provider_class("local_drive").from_options(
        "disk", {}, {"work": str(tmp_path / "work"), "publish": str(tmp_path / "publish")}
    )
    assert CAP_USAGE in provider.capabilities
    usage = provider.usage()
    st = os.statvfs(tmp_path)
    # both roots live on one file system: counted once
    assert usage is not None and usage.total == st.f_blocks * st.f_frsize
    assert usage.free is not None and 0 < usage.free <= usage.total


def test_local_drive_with_a_missing_root_is_unavailable(tmp_path: Path) -> None:
    provider = provider_class("local_drive").from_options("gone", {}, {"work": str(tmp_path / "unmounted")})
    with pytest.raises(SiteUnavailableError, match="not mounted"):
        provider.usage()


@pytest.mark.parametrize("name", ["s3", "memory", "sftp"])
def test_providers_that_cannot_tell_report_nothing(name: str) -> None:
    cls = provider_class(name)
    assert CAP_USAGE not in cls.supported_capabilities()
    assert cls.usage is Provider.usage
