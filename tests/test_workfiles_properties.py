"""Property: whatever the interleaving of edits, deletions, syncs and resolutions on two
workstations (plus the studio as the remote site), no content sitesync ever recorded is lost —
each is still a file somewhere (a work area, a conflict copy beside a file, or the versions area on
the remote site) — and once every conflict is resolved and everyone synced, all sites agree.

Real stack: SQLite catalog, real files, the real sync pass; hypothesis picks the interleavings.
The causality decisions themselves are checked exhaustively in ``test_decisions_*``."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sitesync.workfiles.versions import Decision, FileState, Held, decide_delete, decide_edit
from tests.workfilekit import PROJECT, SCENE, Machine, Workstations, workstations

OTHER = "sh020/work/comp/sh020_comp_v001.nk"
PATHS = (SCENE, OTHER)

step = st.tuples(
    st.sampled_from(["edit", "edit", "sync", "sync", "delete", "resolve"]),
    st.sampled_from(["a", "b"]),
    st.sampled_from(PATHS),
    st.sampled_from(["local", "remote", "both"]),
)


def everything(ws: Workstations) -> set[bytes]:
    return {*ws.a.files().values(), *ws.b.files().values(), *ws.studio_files().values()}


def run(ws: Workstations, steps: list[tuple[str, str, str, str]]) -> None:
    counter = itertools.count()
    recorded: set[bytes] = set()

    def sync(m: Machine) -> None:
        before = {p: m.read(p) for p in PATHS}
        result = m.sync()
        assert not [e for e in result.errors if "left alone" in e], result.errors
        recorded.update(d for p, d in before.items() if d is not None and p not in result.unstable)

    for op, who, path, keep in steps:
        m = ws.a if who == "a" else ws.b
        if op == "edit":
            m.save(path, f"{who}-{next(counter)}".encode())
        elif op == "delete" and m.path(path).exists():
            m.path(path).unlink()
        elif op == "sync":
            sync(m)
        elif op == "resolve" and any(c.path == path and c.blocking for c in m.client.work_conflicts(PROJECT)):
            m.client.work_resolve(PROJECT, path, keep)
        lost = recorded - everything(ws)
        assert not lost, f"recorded contents lost: {lost}"

    # settle: sync, resolve what is open (keeping both), until quiet
    for _ in range(4):
        for m in (ws.a, ws.b):
            sync(m)
        for path in {c.path for c in ws.a.client.work_conflicts(PROJECT) if c.blocking}:
            ws.a.client.work_resolve(PROJECT, path, "both")  # every open conflict of the path at once
    for _ in range(2):
        for m in (ws.a, ws.b):
            sync(m)
    assert not recorded - everything(ws)
    assert [c for c in ws.a.client.work_conflicts(PROJECT) if c.blocking] == []
    for path in PATHS:
        assert ws.a.read(path) == ws.b.read(path), path
        studio = ws.studio_files().get(path)
        assert studio == ws.a.read(path), path


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=14))
def test_random_interleavings_never_lose_a_recorded_content(home: Path, steps: list[tuple[str, str, str, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with workstations(root, f"sqlite:///{root / 'state.db'}") as ws:
            run(ws, steps)


# ---------------------------------------------------------------------- the decisions, exhaustively

V1, V2, V3 = Held(1, 1, "edit", "h1"), Held(2, 2, "edit", "h2"), Held(3, 3, "delete", None)


def test_decisions_edit() -> None:
    assert decide_edit(FileState(None, None), "h1") is Decision.FAST_FORWARD  # new file
    assert decide_edit(FileState(V1, V1), "h1") is Decision.NOTHING  # unchanged
    assert decide_edit(FileState(V1, V1), "h9") is Decision.FAST_FORWARD  # made from the head
    assert decide_edit(FileState(V2, V1), "h9") is Decision.CONFLICT  # the head moved on: both kept
    assert decide_edit(FileState(V2, V1), "h2") is Decision.ADOPT  # same content as the head
    assert decide_edit(FileState(V2, None), "h9") is Decision.CONFLICT  # made from nothing, head exists
    assert decide_edit(FileState(V1, V1, locked_by_other="u@ws-a"), "h9") is Decision.LOCKED
    assert decide_edit(FileState(V1, V1, in_conflict=True), "h9") is Decision.CONFLICT
    assert decide_edit(FileState(V3, V1), "h9") is Decision.EDIT_OVER_DELETE  # modified wins
    assert decide_edit(FileState(V3, V3), "h9") is Decision.FAST_FORWARD  # re-created after a deletion


def test_decisions_delete() -> None:
    assert decide_delete(FileState(V1, V1)) is Decision.DELETE
    assert decide_delete(FileState(V2, V1)) is Decision.DELETE_REFUSED  # changed elsewhere: kept
    assert decide_delete(FileState(V1, V1, locked_by_other="u@ws-a")) is Decision.DELETE_REFUSED
    assert decide_delete(FileState(V3, V1)) is Decision.ADOPT
    assert decide_delete(FileState(V1, None)) is Decision.NOTHING


@given(
    head=st.sampled_from([None, V1, V2, V3]),
    held=st.sampled_from([None, V1, V2, V3]),
    found=st.sampled_from(["h1", "h2", "h9", None]),
    conflict=st.booleans(),
    locked=st.booleans(),
)
def test_no_decision_drops_a_changed_content(head, held, found, conflict, locked) -> None:  # type: ignore[no-untyped-def]
    """A content that differs from what the site held is never ignored: it becomes the head, a
    conflicting version, or is the head's content already."""
    state = FileState(head, held, conflict, "u@x" if locked else None)
    if found is None:
        decision = decide_delete(state)
        if head is not None and not head.is_delete and (held is None or held.id != head.id):
            assert decision is not Decision.DELETE  # never delete content the site did not have
        return
    decision = decide_edit(state, found)
    if held is not None and held.hash == found:
        assert decision is Decision.NOTHING
    else:
        assert decision is not Decision.NOTHING
        if decision is Decision.ADOPT:
            assert head is not None and head.hash == found
