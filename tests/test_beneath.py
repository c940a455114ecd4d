"""Symbolic links never lead a file-system provider out of its site root (issue 12, path 6).

Links to folders and to files, absolute and relative, pointing inside and outside the root, for
every operation of ``local_drive`` (stat, read, write, kernel copy, delete with folder pruning,
listing), with the kernel's ``openat2(RESOLVE_BENEATH)`` and with the by-hand walk used where it
does not exist. The rule is RESOLVE_BENEATH's: a link is followed only while it stays beneath the
root; an absolute link, or one climbing above the root, is refused.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sitesync.errors import StorageError
from sitesync.providers.local_drive import LocalDriveProvider

# PathEscapeError is a StorageError; matching its message keeps these tests meaningful against
# code without it (where the operation simply succeeded outside the root)
ESCAPE = "leads out of the site root"


@pytest.fixture(params=["openat2", "walk"])
def resolution(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    try:
        from sitesync.providers import beneath
    except ImportError:  # code from before resolve-beneath existed
        yield "none"
        return
    if request.param == "walk":
        monkeypatch.setattr(beneath.KERNEL, "available", False)
    elif not beneath.KERNEL.available:
        pytest.skip("openat2 is not available on this kernel")
    yield request.param


@pytest.fixture
def layout(tmp_path: Path, resolution: str) -> dict[str, Path]:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (root / "show" / "real").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"not the site's")
    (root / "show" / "real" / "f.bin").write_bytes(b"inside")
    links = {
        "dir_out_abs": (root / "show" / "dir_out_abs", outside),
        "dir_out_rel": (root / "show" / "dir_out_rel", Path("../../outside")),
        "dir_in_rel": (root / "show" / "dir_in_rel", Path("real")),
        "dir_in_abs": (root / "show" / "dir_in_abs", root / "show" / "real"),
        "file_out_abs": (root / "show" / "file_out_abs.bin", outside / "secret.txt"),
        "file_out_rel": (root / "show" / "file_out_rel.bin", Path("../../outside/secret.txt")),
        "file_in_rel": (root / "show" / "file_in_rel.bin", Path("real/f.bin")),
    }
    for link, target in links.values():
        link.symlink_to(target)
    return {"root": root, "outside": outside}


def _provider(root: Path) -> LocalDriveProvider:
    provider = LocalDriveProvider.from_options("site", {}, {"work": str(root)})
    assert isinstance(provider, LocalDriveProvider)
    return provider


def _outside_untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_bytes() == b"not the site's"


@pytest.mark.parametrize("link", ["dir_out_abs", "dir_out_rel"])
def test_writes_through_a_folder_link_out_of_the_root_are_refused(layout: dict[str, Path], link: str) -> None:
    provider = _provider(layout["root"])
    target = str(layout["root"] / "show" / link / "new.bin")
    with pytest.raises(StorageError, match=ESCAPE):
        provider.write(target, io.BytesIO(b"data"), 4, lambda: None)
    source = layout["root"].parent / "src.bin"
    source.write_bytes(b"kernel")
    with pytest.raises(StorageError, match=ESCAPE):
        provider.write_local(target, str(source), 6, lambda stored: None)
    _outside_untouched(layout["outside"])


@pytest.mark.parametrize("link", ["dir_out_abs", "dir_out_rel"])
def test_deletes_and_pruning_never_leave_the_root(layout: dict[str, Path], link: str) -> None:
    provider = _provider(layout["root"])
    with pytest.raises(StorageError, match=ESCAPE):
        provider.delete(str(layout["root"] / "show" / link / "secret.txt"))
    _outside_untouched(layout["outside"])


@pytest.mark.parametrize("link", ["file_out_abs", "file_out_rel"])
def test_reads_and_stats_of_a_file_link_out_of_the_root_are_refused(layout: dict[str, Path], link: str) -> None:
    provider = _provider(layout["root"])
    path = str(layout["root"] / "show" / f"{link}.bin")
    with pytest.raises(StorageError, match=ESCAPE):
        provider.open_read(path)
    with pytest.raises(StorageError, match=ESCAPE):
        provider.stat(path)
    with pytest.raises(StorageError, match=ESCAPE):
        provider.local_path(path)


def test_deleting_a_file_link_removes_the_link_never_its_target(layout: dict[str, Path]) -> None:
    provider = _provider(layout["root"])
    for name in ("file_out_abs.bin", "file_out_rel.bin", "file_in_rel.bin"):
        provider.delete(str(layout["root"] / "show" / name))
        assert not os.path.lexists(layout["root"] / "show" / name)
    _outside_untouched(layout["outside"])
    assert (layout["root"] / "show" / "real" / "f.bin").read_bytes() == b"inside"


def test_links_staying_beneath_the_root_are_followed(layout: dict[str, Path], resolution: str) -> None:
    provider = _provider(layout["root"])
    root = layout["root"]
    entry = provider.stat(str(root / "show" / "file_in_rel.bin"))
    assert entry is not None and entry.size == 6
    with provider.open_read(str(root / "show" / "dir_in_rel" / "f.bin")) as fh:
        assert fh.read() == b"inside"
    provider.write(str(root / "show" / "dir_in_rel" / "g.bin"), io.BytesIO(b"g"), 1, lambda: None)
    assert (root / "show" / "real" / "g.bin").read_bytes() == b"g"
    # an absolute link is refused even when it points inside (RESOLVE_BENEATH's rule, on both paths)
    with pytest.raises(StorageError, match=ESCAPE):
        provider.stat(str(root / "show" / "dir_in_abs" / "f.bin"))


def test_listing_skips_links_out_of_the_root_and_never_enters_linked_folders(layout: dict[str, Path]) -> None:
    provider = _provider(layout["root"])
    listed = sorted(os.path.relpath(e.path, layout["root"]) for e in provider.list(str(layout["root"])))
    assert listed == ["show/file_in_rel.bin", "show/real/f.bin"]


def test_a_folder_swapped_for_a_link_after_it_was_used_is_not_followed(layout: dict[str, Path]) -> None:
    """The check happens at the moment of each operation, not once: a folder the provider already
    wrote into, replaced by a link out of the root, is refused at the next write and delete."""
    provider = _provider(layout["root"])
    root = layout["root"]
    provider.write(str(root / "show" / "shot" / "a.bin"), io.BytesIO(b"a"), 1, lambda: None)
    (root / "show" / "shot" / "a.bin").unlink()
    (root / "show" / "shot").rmdir()
    (root / "show" / "shot").symlink_to(layout["outside"])
    with pytest.raises(StorageError, match=ESCAPE):
        provider.write(str(root / "show" / "shot" / "b.bin"), io.BytesIO(b"b"), 1, lambda: None)
    with pytest.raises(StorageError, match=ESCAPE):
        provider.delete(str(root / "show" / "shot" / "secret.txt"))
    _outside_untouched(layout["outside"])


def test_paths_outside_every_root_are_refused(tmp_path: Path, resolution: str) -> None:
    provider = _provider(tmp_path / "root")
    (tmp_path / "root").mkdir()
    (tmp_path / "elsewhere.bin").write_bytes(b"x")
    with pytest.raises(StorageError, match="not below any root"):
        provider.delete(str(tmp_path / "elsewhere.bin"))
    assert (tmp_path / "elsewhere.bin").exists()


def test_a_missing_root_is_unknown_never_an_absent_file(tmp_path: Path, resolution: str) -> None:
    from sitesync.errors import SiteUnavailableError

    provider = _provider(tmp_path / "unmounted")
    with pytest.raises(SiteUnavailableError, match="not mounted"):
        provider.stat(str(tmp_path / "unmounted" / "a.bin"))
