"""CLI of the studio operations: the dry-run plan's rendering (``sync --dry-run``), ``path`` (map
a path to another site, wait for it with ``--ensure``) and ``import`` (OpenPype and AYON).

Registered on the main app by ``cli/app.py``. Thin: each command calls one ``sitesync.Client``
method and renders its result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sitesync.cli.app import JsonOpt, ProjectOpt, app, client
from sitesync.cli.render import console, err_console, human_size, line, print_json, styled, table
from sitesync.cli.workflows import CheckProgress, wait_progress_printer
from sitesync.errors import InvalidInputError


def print_plan(plan: dict[str, Any]) -> None:
    totals = plan["totals"]
    console.print(
        line(
            ("dry run: ", "bold"),
            f"this machine's worker would transfer {totals['files']} files ({human_size(totals['bytes'])}) now; "
            f"{totals['skipped_files']} files ({human_size(totals['skipped_bytes'])}) would wait. Nothing was changed.",
        )
    )
    if plan["queues"]:
        t = table(
            "project", "to site", "from sites", "files", "size", title="queues, in the order the worker serves them"
        )
        for q in plan["queues"]:
            t.add_row(q["project"], q["target"], ", ".join(q["sources"]), str(q["files"]), human_size(q["bytes"]))
        console.print(t)
    if plan["transfers"]:
        shown = "first files of each queue" if plan["truncated"] else "every file"
        t = table("order", "id", "path", "size", "priority", "from", "to", title=f"transfers ({shown}, in order)")
        for x in plan["transfers"]:
            t.add_row(
                str(x["order"]),
                str(x["representation_id"]),
                x["path"],
                human_size(x["size"]),
                str(x["priority"]),
                x["source"] or "-",
                x["target"],
            )
        console.print(t)
    if plan["skipped"]:
        console.print(line(("not transferred now", "bold")))
        for x in plan["skipped"]:
            console.print(
                line(
                    f"  {x['project']} -> {x['site']}: ",
                    (x["reason"], "yellow"),
                    f", {x['files']} files ({human_size(x['bytes'])}): {x['detail']}",
                ),
                soft_wrap=True,
            )


# ---------------------------------------------------------------------- path


@app.command("path")
def path_command(
    path: Annotated[str, typer.Argument(help="A path under any site's root (any platform), or {root[NAME]}/....")],
    to: Annotated[str | None, typer.Option("--to", help="Site to map to (default: the active site).")] = None,
    project: ProjectOpt = None,
    platform: Annotated[
        str | None, typer.Option("--platform", help="Map for this OS: windows, linux or darwin (default: this one).")
    ] = None,
    ensure: Annotated[
        bool, typer.Option("--ensure", help="Wait until the file is a verified copy on the site (exit codes of wait).")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="With --ensure: give up after SEC seconds (exit 4).")
    ] = None,
    with_links: Annotated[bool, typer.Option("--with-links", help="With --ensure: also what it references.")] = False,
    interval: Annotated[float, typer.Option("--interval", help="With --ensure: seconds between checks.")] = 1.0,
    json: JsonOpt = False,
) -> None:
    """Print where the file at PATH lives on another site. Exit 2 for a path outside every root;
    with --ensure: 0 present, 3 failed, 4 timeout."""
    with client() as c:
        if ensure:
            result = c.ensure_path(
                path,
                to,
                project=project,
                platform=platform,
                timeout=timeout,
                with_links=with_links,
                poll_interval=interval,
                progress=None if json else wait_progress_printer(),
            )
        else:
            result = c.map_path(path, to, project=project, platform=platform)
    if json:
        print_json(result)
    elif not ensure or result["status"] == "present":
        print(result["mapped"])
    else:
        waited = result["wait"]
        err_console.print(
            f"{result['status']}: {waited['present']}/{waited['files']} files on {result['to_site']} "
            f"after {waited['seconds']:.1f}s",
            soft_wrap=True,
        )
        for error in waited["errors"][:20]:
            err_console.print(f"  {error}", soft_wrap=True)
    if ensure:
        raise typer.Exit(result["exit_code"])


# ---------------------------------------------------------------------- import

import_app = typer.Typer(help="Take over settings and site records from OpenPype or AYON.", no_args_is_help=True)
app.add_typer(import_app, name="import")

DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show what would be imported; change nothing.")]


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InvalidInputError(f"cannot read {file}: {reason}") from None


@import_app.command("openpype-settings")
def import_openpype_settings(
    file: Annotated[Path, typer.Argument(help="OpenPype's exported settings (JSON).")],
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="The project a bare project-settings export is for.")
    ] = None,
    local: Annotated[bool, typer.Option("--local", help="Also apply its local settings to this machine.")] = False,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
) -> None:
    """Map OpenPype's Site Sync settings (system, projects, local) to sitesync's: prints each key
    mapped and each key not mapped, with why."""
    with client() as c:
        result = c.import_openpype_settings(_read(file), project=project, dry_run=dry_run, apply_local=local)
    if json:
        print_json(result)
        return
    for item in result["mapped"]:
        console.print(
            line(("mapped    ", "green"), f"{item['from']} -> {item['to']} = {item['value']!r}"), soft_wrap=True
        )
    for item in result["unmapped"]:
        console.print(line(("not mapped", "yellow"), f" {item['key']}: {item['reason']}"), soft_wrap=True)
    for note in result["notes"]:
        console.print(line(("note      ", "cyan"), f"{note}"), soft_wrap=True)
    if result["local"]["commands"] and not result["local"]["applied"]:
        console.print(
            line(("local settings", "bold"), " (not applied here; run on the machine they are from, or --local):")
        )
        for command in result["local"]["commands"]:
            console.print(f"  {command}", soft_wrap=True)
    if not result["valid"]:
        console.print(styled(f"would fail: {result['error']}", "bold red"), soft_wrap=True)
        raise typer.Exit(2)
    verb = "would change" if dry_run else "changed"
    changed = ", ".join(result["changed"]) or "nothing (already as exported)"
    console.print(line(("dry run: " if dry_run else "imported: ", "bold"), f"{verb} {changed}"), soft_wrap=True)


def _import_representations(
    source: str,
    file: Path,
    project: str,
    dry_run: bool,
    hash_from: list[str] | None,
    site_map: list[str] | None,
    jobs: int,
    json: bool,
) -> None:
    with client() as c, CheckProgress(not json) as progress:
        result = c.import_representations(
            source,
            _read(file),
            project,
            dry_run=dry_run,
            hash_from=hash_from,
            site_map=site_map,
            jobs=jobs,
            progress=progress,
        )
    if json:
        print_json(result)
        return
    reps = result["representations"]
    if dry_run:
        summary = (
            f"dry run: {reps['in_export']} representations in the export; {reps['would_import']} would be imported, "
            f"{reps['already_in_catalog']} are in the catalog already, {reps['not_imported']} cannot be imported"
        )
    else:
        summary = (
            f"{reps['in_export']} representations in the export: {reps['created']} imported ({result['files_created']} files, "
            f"{human_size(result['bytes_created'])}, {human_size(result['bytes_hashed'])} hashed), {reps['merged']} "
            f"merged, {reps['unchanged']} unchanged, {reps['not_imported']} not imported"
        )
    console.print(line((summary, "bold")), soft_wrap=True)
    for site, counts in result["sites"].items():
        console.print(
            f"  {site}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())), soft_wrap=True
        )
    for item in result["problems"]:
        console.print(line(("not imported ", "yellow"), f"{item['source_id']}: {item['problem']}"), soft_wrap=True)
    for item in result["unmapped"]:
        console.print(
            line(("not mapped ", "yellow"), f"{item['key']} ({item['count']}x): {item['reason']}"), soft_wrap=True
        )
    for note in result["notes"]:
        console.print(line(("note ", "cyan"), note), soft_wrap=True)


ImportProject = Annotated[str, typer.Option("--project", "-p", help="The sitesync project to import into.")]
HashFrom = Annotated[
    list[str] | None,
    typer.Option(
        "--hash-from", help="Read new files from these sites to hash them (repeat; default: studio, mounted sites)."
    ),
]
SiteMap = Annotated[list[str] | None, typer.Option("--site-map", help="OLD=NEW: record site OLD as NEW (repeat).")]
Jobs = Annotated[int, typer.Option("--jobs", "-j", help="Files hashed at once.")]


@import_app.command("openpype-representations")
def import_openpype_representations(
    file: Annotated[Path, typer.Argument(help="Representation documents, one JSON document per line (mongoexport).")],
    project: ImportProject,
    dry_run: DryRunOpt = False,
    hash_from: HashFrom = None,
    site_map: SiteMap = None,
    jobs: Jobs = 4,
    json: JsonOpt = False,
) -> None:
    """Register OpenPype's representations with where each file is (created_dt: present; without:
    queued), priorities, attempts and errors. Idempotent."""
    _import_representations("openpype", file, project, dry_run, hash_from, site_map, jobs, json)


@import_app.command("ayon-sitesync")
def import_ayon_sitesync(
    file: Annotated[Path, typer.Argument(help='{"representations": [...], "sitesync": [...]} (JSON).')],
    project: ImportProject,
    dry_run: DryRunOpt = False,
    hash_from: HashFrom = None,
    site_map: SiteMap = None,
    jobs: Jobs = 4,
    json: JsonOpt = False,
) -> None:
    """Register AYON's representations from its sitesync_files_status rows: status per file and
    site, priority, pause. Idempotent."""
    _import_representations("ayon", file, project, dry_run, hash_from, site_map, jobs, json)
