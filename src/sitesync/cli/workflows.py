"""CLI commands of the studio workflows: ``validate``, ``fsck``, ``wait``, ``clear``, ``wants``.

Registered on the main app by ``cli/app.py``. Thin: each calls one ``sitesync.Client`` method and
renders its result; long checks draw a progress bar on a terminal and a line every few seconds in
logs; ``--json`` prints only the summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sitesync.cli.app import JsonOpt, ProjectOpt, SiteOpt, app, client
from sitesync.cli.render import console, err_console, human_size, line, print_json, styled, table

if TYPE_CHECKING:
    from rich.progress import TaskID

    from sitesync.workflows.checks_common import ProgressUpdate

LOG_LINE_SECONDS = 5.0
PHASES = {"walk": "listing files", "hash": "hashing", "check": "checking records"}

SiteArg = Annotated[str, typer.Argument(help="Site name ('local' = this machine).")]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Check the site even though its storage is not proven to be its own (no marker: not mounted?; "
        "another site's marker), and mark it as the site's.",
    ),
]


class CheckProgress:
    """Renders ``ProgressUpdate``s: a bar per phase on a terminal, a line every few seconds otherwise."""

    def __init__(self, enabled: bool) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

        self.enabled = enabled
        self.live = enabled and console.is_terminal
        self.bar = Progress(
            TextColumn("{task.description:<17}"),
            BarColumn(bar_width=36),
            TaskProgressColumn(),
            TextColumn("{task.fields[amount]}"),
            TimeRemainingColumn(),
            console=err_console.real,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.last_line: dict[str, float] = {}

    def __enter__(self) -> CheckProgress:
        if self.live:
            self.bar.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.live:
            self.bar.stop()

    def __call__(self, update: ProgressUpdate) -> None:
        if not self.enabled:
            return
        fmt = human_size if update.unit == "bytes" else str
        amount = (
            fmt(update.done)
            + (f" of {fmt(update.total)}" if update.total is not None else "")
            + ("" if update.unit == "bytes" else " files")
        )
        if self.live:
            task = self.tasks.get(update.phase)
            if task is None:
                task = self.tasks[update.phase] = self.bar.add_task(
                    PHASES.get(update.phase, update.phase), total=update.total, amount=amount
                )
            self.bar.update(task, completed=update.done, total=update.total, amount=amount)
            return
        # logs: when a phase starts, every few seconds, and when it completes
        now = time.monotonic()
        finished = update.total is not None and update.done >= update.total
        if finished or now - self.last_line.get(update.phase, -LOG_LINE_SECONDS) >= LOG_LINE_SECONDS:
            self.last_line[update.phase] = now
            err_console.print(f"{PHASES.get(update.phase, update.phase)}: {amount}", soft_wrap=True)


def _skipped(result: dict[str, Any]) -> None:
    for item in result.get("skipped", []):
        console.print(line(("skipped ", "yellow"), f"project {item['project']}: {item['reason']}"))
    if result.get("interrupted"):
        console.print(styled(f"interrupted: {result['interrupted']}", "bold red"))


@app.command()
def validate(site: SiteArg, project: ProjectOpt = None, force: ForceOpt = False, json: JsonOpt = False) -> None:
    """Register files a site already holds (size and hash checked, nothing copied) and find the
    copies it lost (queued again where another copy exists, otherwise lost there). Refused on
    storage not proven to be the site's (its marker) unless --force."""
    with client() as c, CheckProgress(not json) as progress:
        result = c.validate(site, project, progress=progress, force=force)
    if json:
        print_json(result)
        return
    _skipped(result)
    console.print(
        f"site {result['site']}: {result['listed']} files listed; {result['already_present']} verified copies "
        f"confirmed, {result['registered']} found and registered without copying",
        soft_wrap=True,
    )
    if result["missing"]:
        console.print(
            styled(
                f"{result['missing']} copies missing or damaged: {result['requeued']} queued again, "
                f"{result['lost']} lost (no other verified copy)",
                "bold red",
            )
        )
        for item in result["examples"]["missing"]:
            console.print(f"  {item['reason']} ({item['action']})", soft_wrap=True)
    if result["differs"]:
        console.print(f"{result['differs']} files differ from the catalog (left alone; re-synced when wanted)")
    if result["untracked"]:
        console.print(f"{result['untracked']} files under the roots are not in any catalog (left alone)")
    if result["unreadable"]:
        console.print(styled(f"{result['unreadable']} files could not be read (left as they are)", "yellow"))


@app.command()
def fsck(site: SiteArg, project: ProjectOpt = None, force: ForceOpt = False, json: JsonOpt = False) -> None:
    """Re-hash every verified copy on a site; a missing or corrupt copy is reported, no longer
    trusted, and re-fetched from a good copy. Refused on storage not proven to be the site's
    (its marker) unless --force."""
    with client() as c, CheckProgress(not json) as progress:
        result = c.fsck(site, project, progress=progress, force=force)
    if json:
        print_json(result)
        return
    _skipped(result)
    bad = result["corrupt"] + result["missing"]
    console.print(
        f"site {result['site']}: checked {result['checked']} of {result['files']} copies "
        f"({human_size(result['bytes_read'])} read in {result['seconds']:.1f}s): {result['ok']} good, "
        + (f"{result['corrupt']} corrupt, {result['missing']} missing" if bad else "none bad"),
        soft_wrap=True,
    )
    if result["problems"]:
        t = table("representation", "path", "problem", "action")
        for p in result["problems"]:
            t.add_row(str(p["representation_id"]), p["path"], p["problem"], p["action"])
        console.print(t)
    if result["leftovers_removed"]:
        console.print(f"removed {result['leftovers_removed']} leftovers of interrupted writes:", soft_wrap=True)
        for leftover in result["leftovers"]:
            console.print(f"  {leftover}", soft_wrap=True, markup=False)


def wait_progress_printer() -> Callable[[dict[str, Any]], None]:
    """A ``wait`` progress callback: a line on stderr when the state changes, at least every 30 s."""
    last_at, last_text = 0.0, ""

    def show(snap: dict[str, Any]) -> None:
        nonlocal last_at, last_text
        text = (
            f"waiting for {len(snap['representations'])} representation(s) on {snap['site']}: "
            f"{snap['present']}/{snap['files']} files, {human_size(snap['bytes_present'])} of {human_size(snap['size'])}"
        )
        now = time.monotonic()
        if text != last_text or now - last_at >= 30:
            last_at, last_text = now, text
            err_console.print(text, soft_wrap=True)

    return show


@app.command()
def wait(
    representation: Annotated[int, typer.Argument(help="Representation id.")],
    site: SiteOpt = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Give up after SEC seconds (exit 4).")] = None,
    with_links: Annotated[bool, typer.Option("--with-links", help="Also everything it references.")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between checks.")] = 1.0,
    json: JsonOpt = False,
) -> None:
    """Block until every file is verified on the site. Exit 0 present, 3 failed, 4 timeout, 2 bad input."""
    with client() as c:
        result = c.wait(
            representation,
            site,
            timeout=timeout,
            with_links=with_links,
            poll_interval=interval,
            progress=None if json else wait_progress_printer(),
        )
    if json:
        print_json(result)
    else:
        status = result["status"]
        style = {"present": "green", "failed": "bold red", "timeout": "yellow"}[status]
        console.print(
            line(
                (status, style),
                f": {result['present']}/{result['files']} files on {result['site']} after {result['seconds']:.1f}s",
            )
        )
        for error in result["errors"][:20]:
            console.print(f"  {error}", soft_wrap=True)
    from sitesync.workflows.wait import EXIT_CODES

    raise typer.Exit(EXIT_CODES[result["status"]])


@app.command()
def clear(project: str, site: SiteOpt = None, json: JsonOpt = False) -> None:
    """Remove a project's copies from a site (default: this machine's), keeping what min_copies needs."""
    with client() as c:
        result = c.clear(project, site)
    if json:
        print_json(result)
        return
    console.print(
        f"removed {result['files_removed']} files of {len(result['removed'])} representations from {result['site']}"
        + (f"; dropped {result['dropped_requests']} pending requests" if result["dropped_requests"] else "")
    )
    if result["kept"]:
        console.print(styled(f"kept {len(result['kept'])} representations:", "yellow"))
        for k in result["kept"]:
            console.print(f"  {k['representation_id']}: {k['reason']}", soft_wrap=True)


@app.command()
def wants(
    project: str,
    site: SiteOpt = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Request what is not wanted yet (the worker does too).")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Show what a site's preferred-content rule (sites.NAME.wants) matches in a project."""
    with client() as c:
        result = c.preferred_content(project, site, apply=apply)
    if json:
        print_json(result)
        return
    console.print(line(("rule ", "bold"), f"{result['rule']}  (site {result['site']}, project {result['project']})"))
    console.print(
        f"matches {result['matched']} representations; {result['not_wanted_yet']} not wanted there yet"
        + (f"; requested {result['requested']}" if apply else "")
    )
    if result["representations"]:
        t = table("id", "representation")
        for r in result["representations"]:
            t.add_row(str(r["id"]), f"{r['folder']} {r['product']} {r['version']} {r['name']}")
        console.print(t)


__all__ = ["CheckProgress", "clear", "fsck", "validate", "wait", "wait_progress_printer", "wants"]
