"""Reliability scenarios: storage changed behind sitesync's back (issue 12). Each changes real
files, folders, mounts or settings under a running catalog the way people and machines do, lets
the engine (and validate, remove) run, and counts what was lost or corrupt:

* *lost*: a file the catalog says is present whose copy is missing or wrong, a file that should
  have converged and did not, or a file sitesync did not own that it deleted or overwrote;
* *corrupt*: a file under its final name whose content is not the catalog's.

Files deleted or changed on purpose by the scenario are not counted as lost: what is checked is
that sitesync records them as lost (``missing``), never propagates them, and spends no attempts.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from reliability.harness import SITE_ID, Env, check_site, failure_count, make_env, transfer_counts, write_files
from reliability.scenarios import Result
from sitesync.errors import SitesyncError
from sitesync.hashing import hash_file


def _publish_local(env: Env, count: int, size: int, name: str) -> int:
    srcs = write_files(env.root / "in" / name, count, size, seed=len(name))
    return env.client.publish(
        env.project, folder=name, product="p", version=1, name="n", files=[str(p) for p in srcs]
    ).representation_id


def _publish_on_studio(env: Env, folder: str, count: int, size: int) -> tuple[int, list[Path]]:
    """``count`` files published in place on studio under ``rel/FOLDER``: (representation, files)."""
    srcs = write_files(env.studio_root / "rel" / folder, count, size)
    rep = env.client.publish(
        env.project, folder=folder, product="p", version=1, name="n", files=[str(p) for p in srcs], site="studio"
    ).representation_id
    return rep, srcs


def _statuses(env: Env, rep: int, site: str) -> list[str]:
    out = []
    for _frow, replicas in env.client.store.representation_detail(rep):
        out.append(next((r.status for r in replicas if r.site == site), "none"))
    return out


def _local_file(env: Env, rep: int, index: int) -> Path:
    path = env.client.store.files_of(rep)[index].path.split("}/", 1)[1]
    return env.local_root / "work" / path


def _add_backup(env: Env) -> Path:
    root = env.root / "backup"
    env.client.add_site("backup", "local_drive", [f"work={root}"], {"create_roots": True})
    return root


def _count(result: Result, env: Env, rep: int, site: str, base: Path, expect_present: set[int] | None) -> None:
    """Add what ``check_site`` finds lost or corrupt; files the scenario destroyed on purpose are
    expected not present (``expect_present``: the indexes that must be)."""
    check = check_site(env, rep, site, base)
    result.lost += check.lost
    result.corrupt += check.corrupt
    result.stuck += check.stuck
    if expect_present is not None:
        statuses = _statuses(env, rep, site)
        missed = [i for i in expect_present if statuses[i] != "present"]
        result.lost += len(missed)
        if missed:
            result.converged = False


def source_deleted(work: Path, *, files: int, size: int) -> Result:
    """Half of a download's source copies deleted by hand where another site holds the file (they
    are re-planned from it and healed), the other half where none does (lost: recorded at once,
    the targets wait, nothing failed)."""
    result = Result("source deleted behind sitesync's back", 1, "rm of source copies", files)
    started = time.monotonic()
    env = make_env(work)
    try:
        backup = _add_backup(env)
        shared = _publish_local(env, files // 2, size, "shared")
        env.client.sync_once()  # uploaded to studio: two holders
        # the other half stays on this machine only: the remote site is one switched off
        env.client.add_site("offline", "local_drive", [f"work={env.root / 'offline'}"], {})
        env.client.settings_set("sites.offline.enabled", False, project=env.project)
        env.client.settings_set("remote_site", "offline", project=env.project)
        only = _publish_local(env, files - files // 2, size, "only")
        for rep in (shared, only):
            for i in range(len(env.client.store.files_of(rep))):
                _local_file(env, rep, i).unlink()
            env.client.download(rep, "backup")
        env.client.sync_once()
        _count(result, env, shared, "backup", backup, set(range(files // 2)))
        _count(result, env, shared, SITE_ID, env.local_root / "work", set(range(files // 2)))
        lost_here = _statuses(env, only, SITE_ID)
        waiting = _statuses(env, only, "backup")
        if set(lost_here) != {"missing"} or set(waiting) != {"no_source"}:
            result.converged = False
            result.notes.append(f"only copies: {sorted(set(lost_here))} here, {sorted(set(waiting))} on backup")
        if failure_count(env):
            result.converged = False
            result.notes.append(f"{failure_count(env)} failed attempts were spent")
        events = env.client.store.events(kinds=["source_missing"], limit=100_000)
        result.notes.append(
            f"{len(events)} lost source copies recorded at once; {files // 2} files re-planned from studio and "
            f"healed, {files - files // 2} wait as no_source; 0 attempts spent"
        )
    finally:
        env.close()
    result.seconds = time.monotonic() - started
    return result


def source_modified(work: Path, *, files: int, size: int) -> Result:
    """Source copies rewritten in place (same size, other bytes): never propagated, recorded lost."""
    result = Result("source modified behind sitesync's back", 1, "same-size rewrite of sources", files)
    started = time.monotonic()
    env = make_env(work)
    try:
        rep = _publish_local(env, files, size, "mod")
        changed = set(range(0, files, 2))
        for i in changed:
            path = _local_file(env, rep, i)
            path.write_bytes(os.urandom(path.stat().st_size))
        env.client.sync_once()
        check = check_site(env, rep, "studio", env.studio_root)
        result.corrupt += check.corrupt
        result.lost += check.lost
        statuses = _statuses(env, rep, "studio")
        here = _statuses(env, rep, SITE_ID)
        for i in range(files):
            want = ("no_source", "missing") if i in changed else ("present", "present")
            if (statuses[i], here[i]) != want:
                result.converged = False
        propagated = sum(1 for i in changed if (env.studio_root / _rel(env, rep, i)).exists())
        result.corrupt += propagated
        result.notes.append(f"{len(changed)} changed sources recorded lost, none copied; {files - len(changed)} synced")
    finally:
        env.close()
    result.seconds = time.monotonic() - started
    return result


def _rel(env: Env, rep: int, index: int) -> str:
    return env.client.store.files_of(rep)[index].path.split("}/", 1)[1]


def unrelated_file_at_target(work: Path, *, files: int, size: int) -> Result:
    """Files put by hand where downloads will go: someone's different files are never replaced
    (failed at once, untouched), identical ones are adopted without copying."""
    result = Result("unrelated file at the target", 1, "foreign and identical files in the way", files)
    started = time.monotonic()
    env = make_env(work)
    try:
        rep, srcs = _publish_on_studio(env, "way", files, size)
        foreign, identical = set(range(0, files, 3)), set(range(1, files, 3))
        theirs: dict[int, bytes] = {}
        for i in foreign | identical:
            target = env.local_root / "work" / _rel(env, rep, i)
            target.parent.mkdir(parents=True, exist_ok=True)
            theirs[i] = os.urandom(size) if i in foreign else srcs[i].read_bytes()
            target.write_bytes(theirs[i])
        env.client.download(rep)
        env.client.sync_once()
        statuses = _statuses(env, rep, SITE_ID)
        for i in range(files):
            target = env.local_root / "work" / _rel(env, rep, i)
            if i in foreign:
                result.lost += target.read_bytes() != theirs[i]  # someone's file overwritten
                result.converged &= statuses[i] == "failed"
            else:
                good = target.exists() and hash_file(str(target)) == hash_file(str(srcs[i]))
                result.corrupt += target.exists() and not good
                result.lost += statuses[i] == "present" and not good
                result.converged &= statuses[i] == "present" and good
        copies = transfer_counts(env, rep)
        adopted = env.client.store.events(representation_id=rep, kinds=["adopted"], limit=100_000)
        if len(adopted) != len(identical) or any((f.id, SITE_ID) in copies for f in _files(env, rep, identical)):
            result.converged = False
        result.notes.append(
            f"{len(foreign)} foreign files left untouched (failed at once, no retries), {len(adopted)} identical "
            f"files adopted without copying, {len(copies)} copied"
        )
    finally:
        env.close()
    result.seconds = time.monotonic() - started
    return result


def _files(env: Env, rep: int, indexes: set[int]) -> list:
    rows = env.client.store.files_of(rep)
    return [rows[i] for i in sorted(indexes)]


def share_unmounted(work: Path, *, files: int, size: int) -> Result:
    """The studio share unmounted (an empty mount point left) while downloads from it are queued
    and validate/fsck are run: nothing is declared lost, nothing fails; mounted again, it converges."""
    result = Result("share unmounted", 1, "empty mount point", files)
    started = time.monotonic()
    env = make_env(work, retry_count=1)
    try:
        rep, _srcs = _publish_on_studio(env, "mnt", files, size)
        env.client.download(rep)
        away = env.root / "share-away"
        env.studio_root.rename(away)
        env.studio_root.mkdir()
        env.client.sync_once()
        refused = 0
        for action in (env.client.validate, env.client.fsck):
            try:
                action("studio")
            except SitesyncError as exc:
                refused += "is the storage mounted" in str(exc)
        if set(_statuses(env, rep, "studio")) != {"present"} or failure_count(env):
            result.converged = False
            result.notes.append("copies were judged while the share was away")
        env.studio_root.rmdir()
        away.rename(env.studio_root)
        env.client.sync_once()
        _count(result, env, rep, SITE_ID, env.local_root / "work", set(range(files)))
        result.notes.append(f"validate and fsck refused ({refused} of 2, 'is the storage mounted?'); 0 copies judged")
        if refused != 2:
            result.converged = False
    finally:
        env.close()
    result.seconds = time.monotonic() - started
    return result


def symlink_planted(work: Path, *, files: int, size: int) -> Result:
    """A folder inside the machine's root replaced by a link to a folder outside it before the
    downloads and the removal run: nothing is written, deleted or pruned outside the root."""
    result = Result("symlink planted in a site root", 1, "folder link out of the root", files)
    started = time.monotonic()
    env = make_env(work, retry_count=1)
    try:
        rep, _srcs = _publish_on_studio(env, "lnk", files, size)
        outside = env.root / "outside"
        outside.mkdir()
        (outside / "precious.txt").write_bytes(b"not the site's")
        folder = env.local_root / "work" / "rel"
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.symlink_to(outside)
        env.client.download(rep)
        env.client.sync_once()
        written_outside = [p for p in outside.rglob("*") if p.is_file() and p.name != "precious.txt"]
        result.lost += len(written_outside)
        if set(_statuses(env, rep, SITE_ID)) != {"failed"}:
            result.converged = False
        # the link is removed, the files land, then the folder is swapped for the link again and the
        # local copy removed: the removal refuses to go through it
        folder.unlink()
        env.client.download(rep)
        env.client.sync_once()
        landed = env.local_root / "work" / "rel"
        moved = env.root / "moved-away"
        landed.rename(moved)
        landed.symlink_to(outside)
        with contextlib.suppress(SitesyncError):
            env.client.remove(rep)
        if not (outside / "precious.txt").exists() or sorted(p.name for p in outside.iterdir()) != ["precious.txt"]:
            result.lost += 1
        landed.unlink()
        moved.rename(landed)
        _count(result, env, rep, SITE_ID, env.local_root / "work", None)
        result.notes.append(
            f"{len(written_outside)} files written outside the root; downloads through the link failed with "
            "'leads out of the site root'; the removal through it deleted nothing outside"
        )
    finally:
        env.close()
    result.seconds = time.monotonic() - started
    return result


def same_storage_two_names(work: Path, *, files: int, size: int) -> Result:
    """This machine's root configured on the studio share (one storage under two site names):
    nothing is copied onto itself, one copy is never counted as two, no removal deletes it."""
    result = Result("same storage under two site names", 1, "local root = studio share", files)
    started = time.monotonic()
    env = make_env(work)
    try:
        rep, srcs = _publish_on_studio(env, "two", files, size)
        digests = {p: hash_file(str(p)) for p in srcs}
        env.client.settings_set(f"roots.{SITE_ID}.work", str(env.studio_root), local=True)
        env.client.download(rep)
        env.client.sync_once()
        for site in ("studio", SITE_ID):
            with contextlib.suppress(SitesyncError):
                env.client.remove(rep, site)
        result.lost += sum(1 for p, d in digests.items() if not p.exists() or hash_file(str(p)) != d)
        if set(_statuses(env, rep, "studio")) != {"present"} or "present" in _statuses(env, rep, SITE_ID):
            result.converged = False
        result.notes.append("the second name was refused (another site's marker); both removals refused")
    finally:
        env.close()
    result.seconds = time.monotonic() - started
    return result


SCENARIOS = {
    "source_deleted": source_deleted,
    "source_modified": source_modified,
    "unrelated_target": unrelated_file_at_target,
    "unmounted": share_unmounted,
    "symlink": symlink_planted,
    "two_names": same_storage_two_names,
}

__all__ = ["SCENARIOS"]
