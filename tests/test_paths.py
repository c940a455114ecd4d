"""Catalog path templates: parsing, resolution against a site's roots, and refusal of escapes."""

from __future__ import annotations

import pytest

from sitesync.errors import PathTemplateError
from sitesync.machine_view import SiteSpec
from sitesync.paths import RootedPath, join_root, relative_to_base


@pytest.mark.parametrize(
    "template",
    [
        "{root[work]}/../etc/passwd",
        "{root[work]}/a/../../b",
        "{root[work]}/./a",
        "{root[work]}//a",
        "{root[work]}/",
        "{root[work]}/a/",
        "/etc/passwd",
        "work/a.exr",
        "{root[work]}/C:/windows",
        "{root[work]}/a\\..\\b",
        "{root[work]}/a\x00b",
        "{root[work]}/a\nb",
        "{root[wo rk]}/a",
        "{root[]}/a",
        "{root[work]}a",
        "{root[work]}/" + "x" * 256,
        "{root[work]}/" + "/".join(["abc"] * 1100),
    ],
)
def test_escaping_or_malformed_templates_refused(template: str) -> None:
    with pytest.raises(PathTemplateError):
        RootedPath.parse(template)


@pytest.mark.parametrize(
    "template",
    [
        "{root[work]}/show/sh010/v001/a.1001.exr",
        "{root[work]}/show/v001.final/README",
        "{root[work]}/ünïcødé/日本語.txt",
        "{root[publish]}/with space/it's here.abc",
        "{root[work]}/..hidden-but-not-parent/a",
    ],
)
def test_valid_templates(template: str) -> None:
    assert RootedPath.parse(template).template == template


def test_resolution_uses_the_sites_root() -> None:
    spec = SiteSpec("s", "local_drive", {}, {"work": "/mnt/studio/projects"})
    assert spec.resolve("{root[work]}/show/a.exr") == "/mnt/studio/projects/show/a.exr"
    with pytest.raises(PathTemplateError, match="no location for root 'cache'"):
        spec.resolve("{root[cache]}/x")
    with pytest.raises(PathTemplateError):
        spec.resolve("{root[work]}/../../etc/shadow")


def test_windows_style_base() -> None:
    assert join_root("P:\\projects", "show/a.exr") == "P:\\projects\\show\\a.exr"
    assert join_root("//nas/projects/", "show/a.exr") == "//nas/projects/show/a.exr"


def test_relative_to_base(tmp_path) -> None:
    base = tmp_path / "root"
    (base / "a").mkdir(parents=True)
    assert relative_to_base(str(base / "a" / "f.exr"), str(base)) == "a/f.exr"
    assert relative_to_base(str(tmp_path / "other" / "f.exr"), str(base)) is None
    assert relative_to_base(str(base), str(base)) is None
    (tmp_path / "link").symlink_to(base)
    assert relative_to_base(str(tmp_path / "link" / "a" / "f.exr"), str(base)) == "a/f.exr"
