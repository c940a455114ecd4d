"""Workfile change detection on real files (``sitesync.workfiles.scan``).

The property test drives random trees through random create/modify/delete/rename/touch steps
between scans and checks that each scan reports exactly what changed (content, not clocks: a touch
is no change), that the fact table is the tree, and that a scan of an unchanged tree reads no file.
Modification times are set explicitly (distinct, in the past): a real save is never within the
same clock tick as the previous scan's look, because that look only took files settled for
``settle_seconds`` (see the module docstring); the stability tests cover fresh files.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sitesync.hashing import hash_stream
from sitesync.providers.local_drive import LocalDriveProvider
from sitesync.providers.memory import MemoryProvider, clear
from sitesync.workfiles.scan import FileFacts, ScanResult, scan_paths, scan_work_area
from sitesync.workfiles.select import WorkAreaSelector
from tests.test_crash_and_workers import wait_for

FOLDERS = ["sh010/work/anim", "sh010/work/anim/sub", "sh020/work/fx"]
NAMES = ["a.ma", "b.ma", "c.nk", "d.hip"]
WORKFILES = [f"{folder}/{name}" for folder in FOLDERS for name in NAMES]
NOISE = ["sh010/work/anim/a.ma.swp", "sh010/work/anim/backup/a.ma", "sh010/publish/p.ma"]
OLD = time.time_ns() - 86_400 * 1_000_000_000  # modification times set by the tests start here


class CountingDrive(LocalDriveProvider):
    """``local_drive`` counting the files opened for reading (every hash goes through open_read)."""

    reads: int = 0

    def open_read(self, path: str) -> BinaryIO:
        type(self).reads += 1
        return super().open_read(path)


def drive(root: Path, cls: type[LocalDriveProvider] = LocalDriveProvider) -> LocalDriveProvider:
    return cls.from_options("ws", {}, {"work": str(root)})  # type: ignore[return-value]


def digest(data: bytes) -> str:
    import io

    return hash_stream(io.BytesIO(data))[1]


class Tree:
    """A project folder on disk and the model of what it holds."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.project = root / "proj"
        self.project.mkdir(parents=True)
        self.files: dict[str, bytes] = {}
        self.clock = OLD

    def _stamp(self, path: Path) -> None:
        self.clock += 1_000_000_000
        os.utime(path, ns=(self.clock, self.clock), follow_symlinks=False)

    def write(self, rel: str, data: bytes) -> None:
        path = self.project / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self._stamp(path)
        if rel in WORKFILES:
            self.files[rel] = data

    def delete(self, rel: str) -> None:
        (self.project / rel).unlink()
        self.files.pop(rel, None)

    def rename(self, src: str, dst: str) -> None:
        (self.project / dst).parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.project / src, self.project / dst)
        self.files[dst] = self.files.pop(src)

    def touch(self, rel: str) -> None:
        self._stamp(self.project / rel)


OPS = st.lists(
    st.tuples(
        st.sampled_from(["create", "modify", "delete", "rename", "touch", "noise"]),
        st.integers(0, len(WORKFILES) - 1),
        st.integers(0, len(WORKFILES) - 1),
        st.binary(max_size=24),
    ),
    max_size=12,
)


def apply(tree: Tree, ops: list[tuple[str, int, int, bytes]]) -> None:
    for op, i, j, data in ops:
        rel, other = WORKFILES[i], WORKFILES[j]
        present = rel in tree.files
        if (op == "create" and not present) or (op == "modify" and present):
            tree.write(rel, data)
        elif op == "delete" and present:
            tree.delete(rel)
        elif op == "rename" and present and other not in tree.files:
            tree.rename(rel, other)
        elif op == "touch" and present:
            tree.touch(rel)
        elif op == "noise":
            tree.write(NOISE[i % len(NOISE)], data)


def check_scan(result: ScanResult, before: dict[str, bytes], after: dict[str, bytes]) -> None:
    assert result.unstable == []
    created = set(after) - set(before)
    removed = set(before) - set(after)
    changed = {p for p in set(before) & set(after) if before[p] != after[p]}
    renamed_old = {old.path for old, _new in result.renamed}
    renamed_new = {new.path for _old, new in result.renamed}
    assert {f.path for f in result.new} | renamed_new == created
    assert not {f.path for f in result.new} & renamed_new
    assert {f.path for f in result.deleted} | renamed_old == removed
    assert not {f.path for f in result.deleted} & renamed_old
    assert {f.path for f in result.modified} == changed
    for old, new in result.renamed:
        assert before[old.path] == after[new.path] and old.hash == new.hash
    for f in result.new + result.modified:
        assert f.hash == digest(after[f.path]) and f.size == len(after[f.path])
    for f in result.deleted:
        assert f.hash == digest(before[f.path])
    assert {p: (f.size, f.hash) for p, f in result.facts.items()} == {p: (len(d), digest(d)) for p, d in after.items()}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(initial=OPS, steps=st.lists(OPS, min_size=1, max_size=4))
def test_scans_report_exactly_the_changes_made(initial: list, steps: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tree = Tree(Path(tmp))
        provider = drive(tree.root, CountingDrive)
        selector = WorkAreaSelector.default()
        apply(tree, [("create", i, 0, d) for _op, i, _j, d in initial])
        facts: dict[str, FileFacts] = {}
        before: dict[str, bytes] = {}
        for ops in [[], *steps]:
            apply(tree, ops)
            result = scan_work_area(provider, str(tree.project), selector, facts)
            check_scan(result, before, dict(tree.files))
            facts, before = result.facts, dict(tree.files)
            # nothing changed since: nothing reported and not one file read
            CountingDrive.reads = 0
            again = scan_work_area(provider, str(tree.project), selector, facts)
            assert not again.changed and again.unstable == [] and again.unchanged == len(facts)
            assert CountingDrive.reads == 0 and again.hashed == 0
            assert again.facts == facts


def test_renames_need_no_read_and_touches_are_no_change(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    for rel in WORKFILES[:4]:
        tree.write(rel, rel.encode() * 100)
    provider = drive(tmp_path, CountingDrive)
    facts = scan_work_area(provider, str(tree.project), WorkAreaSelector.default(), {}).facts
    tree.rename(WORKFILES[0], "sh030/work/anim/moved.ma")
    tree.touch(WORKFILES[1])
    CountingDrive.reads = 0
    result = scan_work_area(provider, str(tree.project), WorkAreaSelector.default(), facts)
    assert [(o.path, n.path) for o, n in result.renamed] == [(WORKFILES[0], "sh030/work/anim/moved.ma")]
    assert not result.new and not result.deleted and not result.modified
    assert CountingDrive.reads == 1  # the touched file, to learn its content did not change
    assert result.facts[WORKFILES[1]].mtime_ns != facts[WORKFILES[1]].mtime_ns  # its new facts kept


def test_a_file_being_written_by_another_process_is_not_taken(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    rel = "sh010/work/anim/a.ma"
    tree.write(rel, b"version one\n")
    provider = drive(tmp_path, CountingDrive)
    selector = WorkAreaSelector.default()
    facts = scan_work_area(provider, str(tree.project), selector, {}).facts
    target = tree.project / rel
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "with open(sys.argv[1], 'ab', buffering=0) as fh:\n"
            "    while True:\n"
            "        fh.write(b'x' * 4096); time.sleep(0.002)\n",
            str(target),
        ]
    )
    try:
        assert wait_for(lambda: target.stat().st_size > 100_000, 30)
        for _ in range(3):
            result = scan_work_area(provider, str(tree.project), selector, facts)
            assert result.unstable == [rel]
            assert not result.changed
            assert result.facts[rel] == facts[rel]  # the previous version stays what is known
    finally:
        writer.kill()
        writer.wait()
    # once the writer is done and the file settled, the scan takes the complete file
    taken: list[ScanResult] = []

    def modified() -> bool:
        taken.append(scan_work_area(provider, str(tree.project), selector, facts))
        return bool(taken[-1].modified)

    assert wait_for(modified, 30, 0.2)
    done = taken[-1].modified[0]
    assert done.hash == digest(target.read_bytes()) and done.size == target.stat().st_size


class WrittenWhileRead(LocalDriveProvider):
    """Another writer appends to the file at the moment the scanner reads it."""

    victim = "\0 no file"

    def open_read(self, path: str) -> BinaryIO:
        stream = super().open_read(path)
        if path.endswith(self.victim):
            with open(path, "ab") as fh:
                fh.write(b"more of the scene\n" * 1000)
        return stream


def test_a_file_written_while_it_is_hashed_is_reported_unstable_never_half_taken(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    rel = "sh010/work/anim/a.ma"
    tree.write(rel, b"v1\n" * 100)
    provider = drive(tmp_path, WrittenWhileRead)
    facts = scan_work_area(provider, str(tree.project), WorkAreaSelector.default(), {}).facts
    tree.write(rel, b"v2\n" * 100)
    WrittenWhileRead.victim = rel
    # settle_seconds=0: only the re-stat after hashing can see the write
    result = scan_work_area(provider, str(tree.project), WorkAreaSelector.default(), facts, settle_seconds=0)
    assert result.unstable == [rel] and not result.modified
    assert result.facts[rel] == facts[rel]
    WrittenWhileRead.victim = "nothing"
    result = scan_work_area(provider, str(tree.project), WorkAreaSelector.default(), facts, settle_seconds=0)
    assert [f.path for f in result.modified] == [rel]
    assert result.modified[0].hash == digest((tree.project / rel).read_bytes())


def test_a_freshly_saved_file_waits_for_the_settle_time(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "sh010/work/anim").mkdir(parents=True)
    (project / "sh010/work/anim/new.ma").write_bytes(b"just saved")
    provider = drive(tmp_path)
    result = scan_work_area(provider, str(project), WorkAreaSelector.default(), {}, settle_seconds=60)
    assert result.unstable == ["sh010/work/anim/new.ma"] and not result.new and result.facts == {}
    result = scan_work_area(provider, str(project), WorkAreaSelector.default(), {}, settle_seconds=0)
    assert [f.path for f in result.new] == ["sh010/work/anim/new.ma"]


def test_symbolic_links_are_never_followed_out_of_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.ma").write_bytes(b"not a workfile of this site")
    root = tmp_path / "root"
    work = root / "proj" / "sh010" / "work"
    (work / "anim").mkdir(parents=True)
    (work / "anim" / "real.ma").write_bytes(b"real")
    os.utime(work / "anim" / "real.ma", ns=(OLD, OLD))
    os.symlink(outside, work / "linked_folder")
    os.symlink(outside / "secret.ma", work / "anim" / "linked_file.ma")
    os.symlink("../../../../outside/secret.ma", work / "anim" / "relative_escape.ma")
    os.symlink("real.ma", work / "anim" / "inside_link.ma")  # even inside the root: not a workfile
    provider = drive(root, CountingDrive)
    CountingDrive.reads = 0
    walked = list(provider.walk_stats(str(root / "proj")))
    assert not any("secret" in e.path for e in walked)
    assert {e.path for e in walked if e.is_symlink} == {
        "sh010/work/linked_folder",
        "sh010/work/anim/linked_file.ma",
        "sh010/work/anim/relative_escape.ma",
        "sh010/work/anim/inside_link.ma",
    }
    result = scan_work_area(provider, str(root / "proj"), WorkAreaSelector.default(), {})
    assert list(result.facts) == ["sh010/work/anim/real.ma"]
    assert sorted(result.links) == sorted(e.path for e in walked if e.is_symlink)
    assert CountingDrive.reads == 1
    # a watcher hint naming the link is not followed either
    hinted = scan_paths(provider, str(root / "proj"), WorkAreaSelector.default(), {}, ["sh010/work/linked_folder"])
    assert hinted.facts == {} and hinted.links == ["sh010/work/linked_folder"]


def test_scan_paths_looks_only_at_the_hinted_paths(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    for rel in WORKFILES:
        tree.write(rel, rel.encode())
    provider = drive(tmp_path, CountingDrive)
    selector = WorkAreaSelector.default()
    facts = scan_work_area(provider, str(tree.project), selector, {}).facts
    tree.write("sh010/work/anim/a.ma", b"edited")
    tree.write("sh020/work/fx/c.nk", b"edited, not hinted")
    os.rename(tree.project / "sh010/work/anim/sub", tree.project / "sh010/work/anim/sub2")
    CountingDrive.reads = 0
    result = scan_paths(
        provider,
        str(tree.project),
        selector,
        facts,
        ["sh010/work/anim/a.ma", "sh010/work/anim/sub", "sh010/work/anim/sub2", "sh010/work/anim/a.ma.swp"],
    )
    assert [f.path for f in result.modified] == ["sh010/work/anim/a.ma"]
    assert sorted((o.path, n.path) for o, n in result.renamed) == [
        (f"sh010/work/anim/sub/{n}", f"sh010/work/anim/sub2/{n}") for n in sorted(NAMES)
    ]
    assert not result.new and not result.deleted
    assert result.facts["sh020/work/fx/c.nk"] == facts["sh020/work/fx/c.nk"]  # not hinted: kept
    assert CountingDrive.reads == 1
    full = scan_work_area(provider, str(tree.project), selector, result.facts)
    assert [f.path for f in full.modified] == ["sh020/work/fx/c.nk"] and not full.renamed


def test_a_file_removed_and_saved_again_during_the_scan_is_not_reported_deleted(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    rel = "sh010/work/anim/a.ma"
    tree.write(rel, b"one")
    provider = drive(tmp_path)
    facts = scan_work_area(provider, str(tree.project), WorkAreaSelector.default(), {}).facts

    class SavedBack(LocalDriveProvider):
        def walk_stats(self, base, prune=None):  # type: ignore[no-untyped-def]
            entries = list(super().walk_stats(base, prune))
            (tree.project / rel).write_bytes(b"two")  # the save completes after the walk missed it
            return iter(entries)

    (tree.project / rel).unlink()
    result = scan_work_area(drive(tmp_path, SavedBack), str(tree.project), WorkAreaSelector.default(), facts)
    assert not result.deleted and result.unstable == [rel] and result.facts[rel] == facts[rel]


def test_a_pattern_no_longer_wanted_untracks_without_deleting(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    tree.write("sh010/work/anim/a.ma", b"a")
    tree.write("sh010/work/anim/b.nk", b"b")
    provider = drive(tmp_path)
    facts = scan_work_area(provider, str(tree.project), WorkAreaSelector.default(), {}).facts
    narrower = WorkAreaSelector(["**/work/**"], ["*.nk"])
    result = scan_work_area(provider, str(tree.project), narrower, facts)
    assert result.untracked == ["sh010/work/anim/b.nk"] and not result.deleted
    assert list(result.facts) == ["sh010/work/anim/a.ma"]


def test_a_missing_root_is_unavailable_never_everything_deleted(tmp_path: Path) -> None:
    from sitesync.errors import SiteUnavailableError

    tree = Tree(tmp_path / "mnt")
    tree.write("sh010/work/anim/a.ma", b"a")
    provider = drive(tmp_path / "mnt")
    facts = scan_work_area(provider, str(tree.project), WorkAreaSelector.default(), {}).facts
    os.rename(tmp_path / "mnt", tmp_path / "unmounted")
    with pytest.raises(SiteUnavailableError):
        scan_work_area(provider, str(tree.project), WorkAreaSelector.default(), facts)


def test_storage_without_file_ids_scans_through_list_and_pairs_renames_by_content() -> None:
    clear("wf-scan")
    provider = MemoryProvider.from_options("cloud", {"namespace": "wf-scan"})
    import io

    def put(path: str, data: bytes) -> None:
        provider.write(path, io.BytesIO(data), len(data), lambda: None)

    put("/p/sh010/work/a.ma", b"alpha")
    put("/p/sh010/work/b.ma", b"beta")
    put("/p/sh010/work/x.swp", b"noise")
    put("/p/sh010/publish/p.ma", b"published")
    selector = WorkAreaSelector.default()
    # the memory provider stamps files with "now": settle 0 for this storage
    first = scan_work_area(provider, "/p", selector, {}, settle_seconds=0)
    assert sorted(first.facts) == ["sh010/work/a.ma", "sh010/work/b.ma"]
    assert all(f.file_id == 0 and f.hash for f in first.facts.values())
    provider.delete("/p/sh010/work/a.ma")
    put("/p/sh010/work/renamed.ma", b"alpha")
    result = scan_work_area(provider, "/p", selector, first.facts, settle_seconds=0)
    assert [(o.path, n.path) for o, n in result.renamed] == [("sh010/work/a.ma", "sh010/work/renamed.ma")]
    assert not result.new and not result.deleted
    clear("wf-scan")


def test_a_hint_through_a_linked_folder_is_not_followed_even_inside_the_root(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    tree.write("sh020/work/fx/c.nk", b"real")
    (tree.project / "sh010").mkdir()
    os.symlink("../sh020/work", tree.project / "sh010" / "work")  # stays inside the root
    provider = drive(tmp_path)
    selector = WorkAreaSelector.default()
    facts = scan_work_area(provider, str(tree.project), selector, {}).facts
    assert list(facts) == ["sh020/work/fx/c.nk"]
    hinted = scan_paths(provider, str(tree.project), selector, facts, ["sh010/work/fx/c.nk", "sh010/work/fx"])
    assert hinted.facts == facts and not hinted.changed
    assert provider.stat_exact(str(tree.project / "sh010/work/fx/c.nk")) is None


@pytest.mark.parametrize("kind", ["local_drive", "memory"])
def test_walk_stats_and_stat_exact_agree(tmp_path: Path, kind: str) -> None:
    import io

    if kind == "memory":
        clear("wf-agree")
        provider = MemoryProvider.from_options("m", {"namespace": "wf-agree"})
        base = "/p"
    else:
        provider = drive(tmp_path)
        base = str(tmp_path / "p")
    for rel in WORKFILES[:5]:
        data = rel.encode()
        provider.write(f"{base}/{rel}", io.BytesIO(data), len(data), lambda: None)
    walked = {e.path: e for e in provider.walk_stats(base)}
    assert sorted(walked) == sorted(WORKFILES[:5])
    for rel, entry in walked.items():
        exact = provider.stat_exact(f"{base}/{rel}")
        assert exact is not None and exact[1:] == entry[1:]
        assert (entry.file_id != 0) == (kind == "local_drive")
    pruned = {e.path for e in provider.walk_stats(base, lambda d: d == "sh010/work/anim/sub")}
    assert pruned == {p for p in WORKFILES[:5] if not p.startswith("sh010/work/anim/sub/")}
    assert provider.stat_exact(f"{base}/no/such/file.ma") is None
    clear("wf-agree")


def test_a_file_hinted_twice_is_counted_once(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    tree.write("sh010/work/anim/a.ma", b"a")
    tree.write("sh010/work/anim/b.ma", b"b")
    provider = drive(tmp_path)
    facts = scan_work_area(provider, str(tree.project), WorkAreaSelector.default(), {}).facts
    hints = ["sh010/work/anim", "sh010/work/anim/a.ma", "/sh010/work/anim/a.ma/"]
    result = scan_paths(provider, str(tree.project), WorkAreaSelector.default(), facts, hints)
    assert result.unchanged == 2 and not result.changed and result.facts == facts


def test_hashing_in_several_threads_gives_the_same_scan(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    for i in range(40):
        tree.write(f"sh{i % 3:03d}/work/anim/f{i}.ma", f"content {i % 7}".encode())
    provider = drive(tmp_path)
    one = scan_work_area(provider, str(tree.project), WorkAreaSelector.default(), {}, hash_workers=1)
    four = scan_work_area(provider, str(tree.project), WorkAreaSelector.default(), {}, hash_workers=4)
    assert one.facts == four.facts and len(four.facts) == 40 and four.hashed == 40
    assert [f.path for f in one.new] == [f.path for f in four.new]


def test_a_workfile_replaced_by_a_link_is_deleted_and_the_link_not_followed(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    tree.write("sh010/work/anim/a.ma", b"a")
    provider = drive(tmp_path)
    facts = scan_work_area(provider, str(tree.project), WorkAreaSelector.default(), {}).facts
    (tree.project / "sh010/work/anim/a.ma").unlink()
    os.symlink("/etc/passwd", tree.project / "sh010/work/anim/a.ma")
    result = scan_work_area(provider, str(tree.project), WorkAreaSelector.default(), facts)
    assert [f.path for f in result.deleted] == ["sh010/work/anim/a.ma"] and result.unstable == []
    assert result.links == ["sh010/work/anim/a.ma"] and result.facts == {}


def test_a_file_another_process_holds_open_for_writing_is_not_taken(tmp_path: Path) -> None:
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("no /proc here: the storage cannot tell who holds a file open")
    tree = Tree(tmp_path)
    rel = "sh010/work/anim/a.ma"
    tree.write(rel, b"v1")
    tree.write("sh010/work/anim/read_only.ma", b"r")
    provider = drive(tmp_path)
    selector = WorkAreaSelector.default()
    facts = scan_work_area(provider, str(tree.project), selector, {}).facts
    target = tree.project / rel
    # a DCC that wrote part of the scene and pauses with it open; its times look settled
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys\n"
            "w = open(sys.argv[1], 'ab'); w.write(b' half'); w.flush()\n"
            "os.utime(sys.argv[1], ns=(int(sys.argv[3]), int(sys.argv[3])))\n"
            "r = open(sys.argv[2], 'rb')\n"
            "print('ready', flush=True); sys.stdin.read()\n",
            str(target),
            str(tree.project / "sh010/work/anim/read_only.ma"),
            str(time.time_ns() - 60 * 10**9),  # a minute ago: settled, but recent
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"ready\n"
        minute_ago = time.time_ns() - 60 * 10**9
        os.utime(tree.project / "sh010/work/anim/read_only.ma", ns=(minute_ago, minute_ago))
        result = scan_work_area(provider, str(tree.project), selector, facts)
        assert result.unstable == [rel] and result.facts[rel] == facts[rel]
        assert [f.path for f in result.modified] == []  # the reader's file changed only its time
        assert provider.open_for_writing([str(target), str(tree.project / "sh010/work/anim/read_only.ma")]) == {
            str(target)
        }
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
    result = scan_work_area(provider, str(tree.project), selector, facts)
    assert [f.path for f in result.modified] == [rel] and result.modified[0].hash == digest(b"v1 half")


def test_a_wide_tree_is_walked_with_few_open_descriptors(tmp_path: Path) -> None:
    import resource

    project = tmp_path / "proj"
    for i in range(1200):
        folder = project / "sh010" / "work" / f"task{i:04d}"
        folder.mkdir(parents=True)
        (folder / "scene.ma").write_bytes(b"x")
    provider = drive(tmp_path)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 400), hard))  # fewer than the folders
    try:
        walked = [e.path for e in provider.walk_stats(str(project))]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert len(walked) == 1200 and all(p.endswith("/scene.ma") for p in walked)
