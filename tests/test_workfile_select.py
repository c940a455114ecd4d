"""Which files are workfiles: the default work-area pattern and DCC ignore list, folder pruning, and
the fast matcher agreeing with ``pathspec`` itself on random patterns and paths."""

from __future__ import annotations

import pathspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sitesync.workfiles.select import DEFAULT_IGNORE, WorkAreaSelector, _Spec, selector_for


@pytest.mark.parametrize(
    "path",
    [
        "sh010/work/anim/sh010_anim_v012.ma",
        "seq01/sh010/work/comp/sh010_comp_v003.nk",
        "assets/chair/work/model/chair_v001.hip",
        "work/notes.txt",
        "sh010/work/anim/sub/deeper/file.ma",
    ],
)
def test_default_selector_wants_files_under_work_folders(path: str) -> None:
    assert WorkAreaSelector.default().wants(path)


@pytest.mark.parametrize(
    "path",
    [
        "sh010/work/anim/sh010_anim_v012.ma.swp",  # vim swap
        "sh010/work/anim/sh010_anim_v012.ma~",  # editor backup
        "sh010/work/comp/sh010_comp_v003.nk.autosave",  # Nuke autosave
        "sh010/work/fx/cache.tmp",
        "sh010/work/fx/scene.hip.lock",
        "sh010/work/anim/.mayaSwatches/sh010_anim_v012.ma.swatch",
        "sh010/work/anim/incrementalSave/sh010_anim_v012.ma/sh010_anim_v012.0001.ma",
        "sh010/work/anim/backup/sh010_anim_v011.ma",
        "sh010/publish/anim/v012/sh010_anim_v012.ma",  # a published file is not a workfile
        "sh010/work",  # the folder itself
    ],
)
def test_default_selector_ignores_dcc_noise_and_publishes(path: str) -> None:
    assert not WorkAreaSelector.default().wants(path)


def test_ignored_folders_are_pruned_and_folders_that_may_hold_work_areas_are_not() -> None:
    sel = WorkAreaSelector.default()
    for folder in ("sh010/work/anim/.mayaSwatches", "sh010/work/anim/incrementalSave", "sh010/work/backup"):
        assert sel.prunes(folder), folder
    # "**/work/**": any folder may have a work folder below it
    for folder in ("sh010", "sh010/publish", "sh010/work", "sh010/work/anim"):
        assert not sel.prunes(folder), folder


def test_anchored_path_patterns_prune_folders_no_pattern_can_reach() -> None:
    sel = WorkAreaSelector(["assets/*/work/**", "shots/*/work/*.nk"], [])
    assert not sel.prunes("assets")
    assert not sel.prunes("assets/chair")
    assert not sel.prunes("assets/chair/work/model")
    assert sel.prunes("assets/chair/publish")
    assert sel.prunes("sequences")
    assert not sel.prunes("shots/sh010/work")
    assert sel.prunes("shots/sh010/work/sub")  # "*.nk" files are directly in work/
    assert sel.prunes("shots/sq1/sh010")
    assert sel.wants("assets/chair/work/model/chair.ma")
    assert sel.wants("shots/sh010/work/comp.nk")
    assert not sel.wants("shots/sh010/work/comp.ma")


def test_a_project_replaces_the_ignore_list_and_may_re_include() -> None:
    sel = selector_for(None, ["*.tmp", "!keep.tmp"])
    assert not sel.wants("sh/work/x.tmp")
    assert sel.wants("sh/work/keep.tmp")
    assert sel.wants("sh/work/x.swp")  # no longer in the list


SEGMENTS = [
    "a",
    "work",
    "Thumbs.db",
    "f.tmp ",
    "backup",
    "x.swp",
    "sh1",
    ".mayaSwatches",
    "c.ma",
    "top.ma",
    "q~",
    "f.tmp",
    "incrementalSave",
]
PATTERNS = [
    *DEFAULT_IGNORE,
    "**/work/**",
    "a/*/c.ma",
    "sh*/work/",
    "/top.ma",
    "a/**/q~",
    "*.ma/",
    "work",
    "c.ma",
    "[ab]",
    "x.sw?",
    "*",
    "*.ma",
    "f.tmp ",
]


@settings(max_examples=200, deadline=None)
@given(
    patterns=st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=8),
    paths=st.lists(st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=5).map("/".join), max_size=30),
)
def test_fast_matcher_agrees_with_pathspec(patterns: list[str], paths: list[str]) -> None:
    fast = _Spec(patterns)
    assert fast.fast or "*" in patterns  # pathspec makes "*" an unanchored expression: it decides then
    reference = pathspec.PathSpec.from_lines("gitignore", patterns)
    for path in paths:
        assert fast.match_file(path) == reference.match_file(path), (patterns, path)


@settings(max_examples=200, deadline=None)
@given(
    paths=st.lists(st.sampled_from(["**/work/**", "a/*/work/**", "sh1/**/c.ma", "work/*.ma", "x.swp"]), min_size=1),
    ignore=st.lists(st.sampled_from(["backup/", "*.swp", ".mayaSwatches/", "a/work/"]), max_size=3),
    path=st.lists(st.sampled_from(SEGMENTS), min_size=2, max_size=6).map("/".join),
)
def test_a_pruned_folder_never_holds_a_wanted_file(paths: list[str], ignore: list[str], path: str) -> None:
    sel = WorkAreaSelector(paths, ignore)
    if sel.wants(path):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            assert not sel.prunes("/".join(parts[:depth])), (paths, ignore, path)


@settings(max_examples=200, deadline=None)
@given(
    ignore=st.lists(st.sampled_from(PATTERNS), max_size=6),
    paths=st.lists(st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=5).map("/".join), max_size=40),
)
def test_the_walk_matcher_agrees_with_wants(ignore: list[str], paths: list[str]) -> None:
    sel = WorkAreaSelector(["**/work/**", "a/*.ma"], ignore)
    matcher = sel.walk_matcher()
    for path in sorted(paths) + paths:  # grouped by folder as a walk gives them, then in any order
        assert matcher(path) == sel.wants(path), (ignore, path)
