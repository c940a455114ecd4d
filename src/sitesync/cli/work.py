"""CLI of workfile sync (issue 15): ``sitesync work status|sync|conflicts|resolve|history|restore|
lock|unlock``. Thin: each command calls one ``sitesync.Client`` method (``facade/workfiles.py``) and
renders its typed result; ``--json`` prints the result's fields. Registered on the main app by
``cli/app.py``; imports nothing heavy until a command runs (``tests/test_cli_startup.py``).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from sitesync.cli.app import JsonOpt, app, client
from sitesync.cli.render import console, human_size, human_time, line, print_json, table

work_app = typer.Typer(
    help="Sync artists' workfiles (mutable working files) between sites: versions, conflicts kept, locks.",
    no_args_is_help=True,
)
app.add_typer(work_app, name="work")

ProjectArg = Annotated[str, typer.Argument(help="Project name.")]
PathArg = Annotated[str, typer.Argument(help="The workfile's path relative to the project folder.")]
RootOpt = Annotated[
    str | None, typer.Option("--root", help="The root holding the work area (default: the first workfile root).")
]


def _as_json(value: Any) -> Any:
    import dataclasses

    if isinstance(value, list):
        return [_as_json(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _lock_text(lock: Any) -> str:
    if lock is None:
        return ""
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(lock.expires_at))
    return f"{lock.user}@{lock.site} until {until}"


@work_app.command("status")
def status(
    project: ProjectArg,
    path: Annotated[str | None, typer.Option("--path", help="Only workfiles whose path matches this glob.")] = None,
    json: JsonOpt = False,
) -> None:
    """Each tracked workfile: its version here and on the remote site, and its state."""
    with client() as c:
        rows = c.work_status(project, path)
    if json:
        print_json(_as_json(rows))
        return
    if not rows:
        console.print(f"no workfiles recorded in project {project} yet; run `sitesync work sync {project}`")
        return
    t = table("path", "state", "here", "remote", "current", "size", "made on", "lock")
    for r in rows:
        t.add_row(
            r.path,
            r.state,
            str(r.here or "-"),
            str(r.remote or "-"),
            str(r.current or "-"),
            human_size(r.size or 0) if r.size is not None else "-",
            f"{r.made_by_user}@{r.made_on_site}" if r.made_on_site else "-",
            _lock_text(r.lock),
        )
    console.print(t)


@work_app.command("sync")
def sync(
    project: ProjectArg,
    once: Annotated[
        bool, typer.Option("--once", help="One pass and exit (the default; the worker runs continuously).")
    ] = True,
    json: JsonOpt = False,
) -> None:
    """Scan this machine's work areas, record changes as versions and run the transfers once."""
    with client() as c:
        result = c.work_sync(project)
    if json:
        print_json(_as_json(result))
        return
    console.print(
        f"scanned {sum(result.scanned.values())} workfiles: {result.new} new, {result.modified} modified, "
        f"{result.deleted} deleted, {result.renamed} renamed; {result.versions} versions recorded, "
        f"{result.conflicts} conflicts; {result.transfers} copies written ({human_size(result.bytes)}), "
        f"{result.deletions} deletions carried out, {result.pruned} old versions pruned"
    )
    if result.unstable:
        console.print(f"still being written, taken next time: {', '.join(result.unstable)}", markup=False)
    for error in result.errors:
        console.print(line(("error: ", "red"), error), soft_wrap=True)
    if result.conflicts:
        console.print(f"see `sitesync work conflicts {project}`")


@work_app.command("conflicts")
def conflicts(
    project: ProjectArg,
    all: Annotated[bool, typer.Option("--all", help="Include resolved conflicts.")] = False,
    json: JsonOpt = False,
) -> None:
    """The workfiles changed on two sites from the same base (both contents kept)."""
    with client() as c:
        rows = c.work_conflicts(project, include_resolved=all)
    if json:
        print_json(_as_json(rows))
        return
    if not rows:
        console.print(f"no {'' if all else 'open '}conflicts in project {project}")
        return
    t = table("path", "kind", "site", "versions", "beside the file", "detected", "resolved")
    for r in rows:
        t.add_row(
            r.path,
            r.kind,
            r.site,
            f"{r.local_version or '-'} vs {r.incoming_version or '-'}",
            r.conflict_path or "-",
            human_time(r.detected_at),
            f"{r.resolution} by {r.resolved_by}" if r.resolved_at else "-",
        )
    console.print(t)
    for r in rows:
        if r.resolved_at is None:
            console.print(r.message, markup=False, soft_wrap=True)


@work_app.command("resolve")
def resolve(
    project: ProjectArg,
    path: PathArg,
    keep: Annotated[
        str, typer.Option("--keep", help="local (this site's content wins), remote (the other wins) or both.")
    ],
    root: RootOpt = None,
    json: JsonOpt = False,
) -> None:
    """Resolve a workfile's conflict; the losing content stays kept (nothing is deleted)."""
    with client() as c:
        result = c.work_resolve(project, path, keep, root=root)
    if json:
        print_json(_as_json(result))
        return
    console.print(f"resolved {result.path}, keeping {result.keep}; current version {result.current}", markup=False)
    for own in result.own_workfiles:
        console.print(f"now a workfile of its own: {own}", markup=False)


@work_app.command("history")
def history(project: ProjectArg, path: PathArg, root: RootOpt = None, json: JsonOpt = False) -> None:
    """Every version of a workfile: who made it where, its parent, whether it is still kept."""
    with client() as c:
        rows = c.work_history(project, path, root=root)
    if json:
        print_json(_as_json(rows))
        return
    t = table("version", "kind", "parent", "made", "size", "recorded", "kept", "current")
    for v in rows:
        t.add_row(
            str(v.number),
            v.kind,
            str(v.parent or "-"),
            f"{v.made_by_user}@{v.made_on_site}",
            human_size(v.size) if v.size is not None else "-",
            human_time(v.recorded_at),
            "yes" if v.kept else "no",
            "*" if v.current else "",
        )
    console.print(t)


@work_app.command("restore")
def restore(
    project: ProjectArg,
    path: PathArg,
    version: Annotated[int, typer.Option("--version", help="The version number to bring back (see history).")],
    root: RootOpt = None,
    json: JsonOpt = False,
) -> None:
    """Bring an old version back as the current content (a new version that propagates)."""
    with client() as c:
        made = c.work_restore(project, path, version, root=root)
    if json:
        print_json(_as_json(made))
        return
    console.print(f"version {version} of {path} restored as version {made.number}", markup=False)


@work_app.command("lock")
def lock(project: ProjectArg, path: PathArg, root: RootOpt = None, json: JsonOpt = False) -> None:
    """Lock a workfile for you on this site; other sites see who holds it."""
    with client() as c:
        held = c.work_lock(project, path, root=root)
    if json:
        print_json(_as_json(held))
        return
    console.print(f"locked {path}: {_lock_text(held)}", markup=False)


@work_app.command("unlock")
def unlock(
    project: ProjectArg,
    path: PathArg,
    force: Annotated[bool, typer.Option("--force", help="Break another user's lock (recorded).")] = False,
    root: RootOpt = None,
    json: JsonOpt = False,
) -> None:
    """Release your lock on a workfile (or break another's with --force)."""
    with client() as c:
        removed = c.work_unlock(project, path, force=force, root=root)
    if json:
        print_json({"unlocked": removed})
        return
    console.print(f"unlocked {path}" if removed else f"{path} was not locked", markup=False)
