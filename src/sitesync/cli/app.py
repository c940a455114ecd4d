"""The ``sitesync`` command line: a thin layer over ``sitesync.Client`` (typer + rich).

Every command that reports state has ``--json``. User errors are printed as one line by
``sitesync.cli.main`` and exit with code 2.

Every process builds this whole command tree, so this module and the modules that register
commands on it import only what defining the commands takes: the client (the state store,
SQLAlchemy, the settings models), the engine and rich's live display are imported by the commands
that use them (``tests/test_cli_startup.py`` guards it).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sitesync.cli.render import (
    console,
    failed_count,
    human_size,
    human_time,
    line,
    print_bandwidth,
    print_json,
    progress_line,
    status_text,
    styled,
    sync_progress_view,
    table,
)
from sitesync.cli.service import wait_for_database

if TYPE_CHECKING:
    from sitesync.client import Client
    from sitesync.engine.report import RunReport
    from sitesync.engine.worker import Worker

app = typer.Typer(
    name="sitesync",
    help="Keep a studio's published files where people need them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
project_app = typer.Typer(help="Create and list projects.", no_args_is_help=True)
site_app = typer.Typer(help="Define and inspect sites.", no_args_is_help=True)
settings_app = typer.Typer(help="Show, change, import and export settings.", no_args_is_help=True)
app.add_typer(project_app, name="project")
app.add_typer(site_app, name="site")
app.add_typer(settings_app, name="settings")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
SiteOpt = Annotated[str | None, typer.Option("--site", "-s", help="Site name ('local' = this machine).")]
ProjectOpt = Annotated[str | None, typer.Option("--project", "-p", help="Project name.")]


class _State:
    db: str | None = None


_state = _State()


@app.callback()
def _main(
    db: Annotated[
        str | None,
        typer.Option("--db", envvar="SITESYNC_DB", help="State database URL (default: SQLite in the data dir)."),
    ] = None,
) -> None:
    _state.db = db


def client() -> Client:
    from sitesync.client import Client

    return Client(db=_state.db)


# ---------------------------------------------------------------------- init / info


@app.command()
def init(json: JsonOpt = False) -> None:
    """Create or upgrade the state database."""
    with client() as c:
        result = c.init()
    if json:
        print_json(result)
        return
    if result["created"]:
        console.print(f"created the state database {result['database']} (schema {result['to']})")
    elif result["from"] == result["to"]:
        console.print(f"the state database {result['database']} is up to date (schema {result['to']})")
    else:
        console.print(f"upgraded {result['database']} from schema {result['from']} to {result['to']}")
    for what in result["tightened"]:
        console.print(f"made private (readable by its owner only): {what}", markup=False, soft_wrap=True)


@app.command()
def info(json: JsonOpt = False) -> None:
    """This machine's site id, the database, config paths, and each project's active/remote site."""
    with client() as c:
        data = c.info()
    if json:
        print_json(data.to_dict())
        return
    rows = [
        ("site id", f"{data.site_id}  (use 'local' in settings)"),
        ("database", data.database),
        ("local settings", data.local_settings_file),
        ("data dir", data.data_dir),
        ("local root", data.local_root),
        ("site sync", "on" if data.sync_enabled else "OFF (only the studio site is used)"),
        ("providers", ", ".join(data.providers)),
    ]
    for key, value in rows:
        console.print(line((f"{key:<15}", "bold"), str(value)))
    if data.projects:
        t = table("project", "sync", "active site", "remote site")
        for p in data.projects:
            if p.error is not None:
                t.add_row(p.name, styled("error", "red"), p.error, "")
            else:
                t.add_row(p.name, "on" if p.sync_enabled else "off", p.active_site, p.remote_site)
        console.print(t)


# ---------------------------------------------------------------------- projects


@project_app.command("create")
def project_create(
    name: str,
    root: Annotated[list[str], typer.Option("--root", help="NAME=PATH or NAME@PLATFORM=PATH (repeat).")],
    json: JsonOpt = False,
) -> None:
    """Create a project with its roots on the studio storage."""
    with client() as c:
        result = c.create_project(name, root)
    if json:
        print_json(result)
    else:
        console.print(f"created project {result['name']} (id {result['id']})")


@project_app.command("list")
def project_list(json: JsonOpt = False) -> None:
    """Every project with its sites and replica counts."""
    with client() as c:
        projects = c.projects()
    if json:
        print_json(projects)
        return
    t = table("project", "sync", "active", "remote", "present", "queued", "in progress", "failed")
    for p in projects:
        counts = p.get("counts", {})
        state = (
            styled("error", "red")
            if "error" in p
            else "paused"
            if p["paused"]
            else "on"
            if p.get("sync_enabled")
            else "off"
        )
        t.add_row(
            p["name"],
            state,
            p.get("active_site", "-"),
            p.get("remote_site", "-"),
            str(counts.get("present", 0)),
            str(counts.get("queued", 0)),
            str(counts.get("in_progress", 0)),
            failed_count(counts.get("failed", 0)),
        )
    console.print(t)


# ---------------------------------------------------------------------- sites


@site_app.command("add")
def site_add(
    name: str,
    provider: Annotated[str, typer.Option("--provider", help="Provider name, e.g. local_drive.")],
    root: Annotated[list[str] | None, typer.Option("--root", help="NAME=PATH or NAME@PLATFORM=PATH (repeat).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Provider option KEY=VALUE (repeat).")] = None,
    local_set: Annotated[
        list[str] | None,
        typer.Option(
            "--local-set",
            help="Provider option KEY=VALUE kept in this machine's local settings only (programs, credentials "
            "files, env:/file:/keyring: secrets; repeat).",
        ),
    ] = None,
    alternative: Annotated[
        list[str] | None, typer.Option("--alternative", help="A site that is the same storage (repeat).")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Define a site: a provider, its options and where each root lives on it."""
    with client() as c:
        result = c.add_site(name, provider, root or [], set_ or [], alternative or [], local_set or [])
    if json:
        print_json(result)
    else:
        console.print(f"added site {name} ({provider})")


@site_app.command("list")
def site_list(project: ProjectOpt = None, json: JsonOpt = False) -> None:
    """Every site: built-in studio and this machine, and the defined ones."""
    with client() as c:
        sites = c.sites(project)
    if json:
        print_json(sites)
        return
    t = table("site", "provider", "notes", "roots")
    for s in sites:
        notes = []
        if s.get("this_machine"):
            notes.append("this machine")
        if s.get("builtin") and s["name"] == "studio":
            notes.append("studio storage")
        if s.get("paused"):
            notes.append("paused")
        if s.get("alternative_sites"):
            notes.append("same storage as " + ", ".join(s["alternative_sites"]))
        roots = s.get("resolved_roots") or s.get("roots") or {}
        t.add_row(s["name"], s["provider"], ", ".join(notes), ", ".join(f"{k}={v}" for k, v in roots.items()))
    console.print(t)


@site_app.command("show")
def site_show(name: str, project: ProjectOpt = None, json: JsonOpt = False) -> None:
    """One site's definition (secrets masked) and how many records the catalog holds for it."""
    with client() as c:
        site = c.site(name, project)
    if json:
        print_json(site)
        return
    for key, value in site.items():
        console.print(line((f"{key}: ", "bold"), str(value)))


@site_app.command("test")
def site_test(
    name: str,
    project: ProjectOpt = None,
    root: Annotated[
        str | None, typer.Option("--root", help="Root whose location holds the scratch folder (default: the first).")
    ] = None,
    check: Annotated[list[str] | None, typer.Option("--check", help="Run only this check (repeat).")] = None,
    json: JsonOpt = False,
) -> None:
    """Run the provider contract suite against a site, in a scratch folder removed afterwards.
    Exits with 1 if a check fails."""
    with client() as c:
        result = c.site_test(name, project=project, root=root, only=check or None)
    if json:
        print_json(result)
    else:
        console.print(line((f"site {result['site']}", "bold"), f"  {result['provider']}: {result['description']}"))
        console.print(f"project {result['project']}, root {result['root']} at {result['location']}")
        console.print("capabilities: " + (", ".join(result["capabilities"]) or "none beyond the required contract"))
        t = table("check", "result", "seconds", "detail")
        t.columns[2].justify = "right"
        t.columns[3].no_wrap = False  # reasons are long: wrap them, keep the other columns whole
        for chk in result["checks"]:
            if chk["skipped"]:
                outcome = styled("skipped", "yellow")
            else:
                outcome = styled("ok", "green") if chk["ok"] else styled("FAILED", "bold red")
            t.add_row(chk["name"], outcome, f"{chk['seconds']:.2f}", chk["detail"])
        console.print(t)
        summary = f"{result['passed']} passed, {result['failed']} failed, {result['skipped']} skipped"
        console.print(styled(summary, "green" if result["ok"] else "bold red"))
    if not result["ok"]:
        raise typer.Exit(1)


@site_app.command("mark")
def site_mark(
    name: str,
    project: ProjectOpt = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Write the marker even where the check refuses (none where one was, another site's, another id): "
            "you say this storage is the site's.",
        ),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report; write nothing.")] = False,
    json: JsonOpt = False,
) -> None:
    """Show (and write on first use) the marker that identifies a site's storage at each root.
    Exits with 1 when a root is not proven to be the site's storage."""
    with client() as c:
        result = c.mark_site(name, project, force=force, dry_run=dry_run)
    if json:
        print_json(result)
    else:
        t = table("project", "location", "state", "detail")
        t.columns[3].no_wrap = False
        for r in result["roots"]:
            style = "green" if r["state"] in ("ok", "marked") else "bold red"
            t.add_row(r["project"], r["location"], styled(r["state"], style), r["detail"])
        console.print(t)
        for s in result["skipped"]:
            console.print(line(("skipped ", "yellow"), f"project {s['project']}: {s['reason']}"))
    if not result["ok"]:
        raise typer.Exit(1)


@site_app.command("remove")
def site_remove(
    name: str,
    forget: Annotated[bool, typer.Option("--forget", help="Also drop the catalog's records of this site.")] = False,
    json: JsonOpt = False,
) -> None:
    """Remove a site definition (refused while projects or records still use it)."""
    with client() as c:
        result = c.remove_site(name, forget=forget)
    if json:
        print_json(result)
    else:
        console.print(f"removed site {name}" + (f"; forgot {result['forgotten_records']} records" if forget else ""))


# ---------------------------------------------------------------------- settings


@settings_app.command("show")
def settings_show(
    project: ProjectOpt = None,
    effective: Annotated[bool, typer.Option("--effective", help="Merged layers as this machine sees them.")] = False,
    json: JsonOpt = False,
) -> None:
    """Stored settings (system, default project, local), or one project's, or the effective result."""
    with client() as c:
        data = c.settings_show(project, effective)
    if json:
        print_json(data)
        return
    import tomli_w

    console.print(tomli_w.dumps(_drop_none(data)), markup=False)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value if v is not None]
    return value


@settings_app.command("set")
def settings_set(
    key: str,
    value: str,
    project: ProjectOpt = None,
    local: Annotated[bool, typer.Option("--local", help="This machine's local settings file.")] = False,
    json: JsonOpt = False,
) -> None:
    """Set KEY (dotted, e.g. retry_count, sites.s3.enabled, system.enabled) to VALUE ('unset' removes)."""
    with client() as c:
        result = c.settings_set(key, value, project=project, local=local)
    if json:
        print_json(result)
    else:
        console.print(f"{result['scope']}: {result['key']} = {result['value']!r}")


@settings_app.command("import")
def settings_import(file: Path, json: JsonOpt = False) -> None:
    """Import system, default-project and project settings from a TOML file (all or nothing)."""
    from sitesync.errors import InvalidInputError

    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{file} is not UTF-8 text (a TOML settings export?); nothing was imported") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read {file}: {exc.strerror}") from None
    with client() as c:
        result = c.settings_import(text)
    if json:
        print_json(result)
    else:
        created = result["projects_created"]
        console.print(
            f"imported settings; {result['projects_updated']} projects updated"
            + (f", created {', '.join(created)}" if created else "")
        )


@settings_app.command("export")
def settings_export(
    file: Annotated[Path | None, typer.Argument(help="Write here instead of standard output.")] = None,
    include_secrets: Annotated[
        bool, typer.Option("--include-secrets", help="Write secrets in clear text (keep the file safe).")
    ] = False,
) -> None:
    """Export system, default-project and project settings as TOML (secrets masked)."""
    with client() as c:
        text = c.settings_export(include_secrets=include_secrets)
    if file is None:
        sys.stdout.write(text)
    else:
        file.write_text(text, encoding="utf-8")
        console.print(f"wrote {file}")


# ---------------------------------------------------------------------- publish


@app.command()
def publish(
    project: str,
    files: Annotated[list[str], typer.Argument(help="Files to publish.")],
    folder: Annotated[str, typer.Option("--folder", help="Asset or shot path, e.g. seq01/sh010.")],
    product: Annotated[str, typer.Option("--product", help="Product, e.g. renderMain.")],
    version: Annotated[str, typer.Option("--version", help="Version number or 'hero'.")],
    name: Annotated[str, typer.Option("--name", help="Representation name, e.g. exr.")],
    site: SiteOpt = None,
    priority: Annotated[int | None, typer.Option("--priority", help="1-1000, higher first.")] = None,
    link: Annotated[
        list[int] | None, typer.Option("--link", help="Id of a representation this one references (repeat).")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Register a representation and its files; prints the representation id."""
    with client() as c:
        result = c.publish(
            project,
            folder=folder,
            product=product,
            version=version,
            name=name,
            files=files,
            site=site,
            priority=priority,
            links=link,
        )
    if json:
        print_json(
            {
                "representation_id": result.representation_id,
                "created": result.created,
                "changed_files": result.changed_files,
                "queued_sites": list(result.queued_sites),
                "requeued_sites": list(result.requeued_sites),
            }
        )
        return
    print(result.representation_id)
    if result.requeued_sites:
        console.print(f"content changed: queued again on {', '.join(result.requeued_sites)}", style="yellow")


# ---------------------------------------------------------------------- status / whereis


@app.command()
def status(
    project: Annotated[str | None, typer.Argument(help="Project (default: all projects).")] = None,
    representation: Annotated[int | None, typer.Option("--representation", "-r", help="One representation.")] = None,
    site: SiteOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="Representations per page.")] = 200,
    offset: Annotated[int, typer.Option("--offset", help="Skip this many representations (paging).")] = 0,
    json: JsonOpt = False,
) -> None:
    """Status of all projects, of one project (per representation), or of one representation (per file)."""
    with client() as c:
        data = c.status(project, representation=representation, site=site, limit=limit, offset=offset)
        if representation is None:
            data["bandwidth"] = c.bandwidth()
    if json:
        print_json(data)
        return
    if representation is not None:
        _print_detail(data)
        return
    if project is None:
        project_list_render(data["projects"])
    else:
        _print_project_status(data)
    print_bandwidth(data["bandwidth"])


def project_list_render(projects: list[dict[str, Any]]) -> None:
    t = table("project", "present", "queued", "in progress", "failed")
    for p in projects:
        counts = p.get("counts", {})
        t.add_row(
            p["name"],
            str(counts.get("present", 0)),
            str(counts.get("queued", 0)),
            str(counts.get("in_progress", 0)),
            failed_count(counts.get("failed", 0)),
        )
    console.print(t)


def _print_project_status(data: dict[str, Any]) -> None:
    console.print(line((data["project"], "bold"), f"  active: {data['active_site']}  remote: {data['remote_site']}"))
    st = table("site", "present", "queued", "in progress", "failed", "stored", title="sites")
    for s in data["sites"]:
        counts = s["counts"]
        st.add_row(
            s["site"],
            str(counts.get("present", 0)),
            str(counts.get("queued", 0)),
            str(counts.get("in_progress", 0)),
            failed_count(counts.get("failed", 0)),
            f"{human_size(s['bytes_present'])} of {human_size(s['bytes_total'])}",
        )
    console.print(st)
    sites = data["sites_shown"]
    labels = []
    for s in sites:
        role = "active" if s == data["active_site"] else "remote" if s == data["remote_site"] else "site"
        labels.append(s if role == "site" else role)
    t = table(
        "id",
        "representation",
        "files",
        "size",
        *labels,
        "updated",
        title=f"representations ({len(data['representations'])} of {data['total']})",
    )
    for r in data["representations"]:
        cells: list[Any] = [
            str(r["id"]),
            f"{r['folder']} {r['product']} {r['version']} {r['name']}",
            str(r["files"]),
            human_size(r["size"]),
        ]
        updated = r["updated_at"]
        for s in sites:
            state = r["sites"][s]
            cells.append(status_text(state["status"], state.get("progress")))
            updated = max(updated, state.get("updated_at") or 0)
        cells.append(human_time(updated))
        t.add_row(*cells)
    console.print(t)


def _print_detail(data: dict[str, Any]) -> None:
    rep = data["representation"]
    console.print(
        f"{rep['id']} {rep['project']} {rep['folder']}/{rep['product']}/{rep['version']}/{rep['name']}  "
        f"{rep['files']} files, {human_size(rep['size'])}"
    )
    for key, label in (("links", "links to"), ("linked_by", "linked by")):
        if data.get(key):
            refs = ", ".join(f"{x['id']} ({x['folder']}/{x['product']}/{x['version']}/{x['name']})" for x in data[key])
            console.print(line((f"{label}: ", "bold"), refs))
    t = table("file", "site", "status", "attempts", "error")
    for f in data["files"]:
        first = True
        for r in f["replicas"]:
            t.add_row(
                f["path"] if first else "",
                r["site"],
                status_text("paused" if r["paused"] and r["status"] == "queued" else r["status"], r["progress"]),
                str(r["attempts"]),
                r["last_error"] or "",
            )
            first = False
    console.print(t)


@app.command()
def whereis(
    target: Annotated[str, typer.Argument(help="Representation id, catalog path or file path.")], json: JsonOpt = False
) -> None:
    """Where a representation or file has verified copies, and where they are on disk."""
    from sitesync.facade.records import RepresentationWhereabouts

    with client() as c:
        data = c.whereis(target)
    if json:
        print_json(data.to_dict())
        return
    if isinstance(data, RepresentationWhereabouts):
        rep = data.representation
        console.print(
            line((str(rep["id"]), "bold"), f" {rep['folder']}/{rep['product']}/{rep['version']}/{rep['name']}")
        )
        t = table("site", "status", "present", "location")
        for s in data.sites:
            t.add_row(s.site, status_text(s.status), f"{s.present}/{s.files}", s.location or "-")
        console.print(t)
        return
    for f in data.files:
        console.print(line((f.path, "bold"), f"  (representation {f.representation_id}, {f.project})"))
        t = table("site", "status", "location")
        for copy in f.copies:
            t.add_row(copy.site, status_text(copy.status), copy.location or "-")
        console.print(t)


# ---------------------------------------------------------------------- requests and control

IdArg = Annotated[int, typer.Argument(help="Representation id.")]


@app.command()
def download(
    representation: IdArg,
    site: SiteOpt = None,
    with_links: Annotated[
        bool, typer.Option("--with-links", help="Also every representation it references, transitively.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Want a representation on the active site (or --site)."""
    with client() as c:
        result = c.download(representation, site, with_links=with_links)
    _print_want(result, json)
    for linked in [] if json else result.get("links", []):
        _print_want(linked, False)


@app.command()
def upload(representation: IdArg, site: SiteOpt = None, json: JsonOpt = False) -> None:
    """Want a representation on the remote site (or --site)."""
    with client() as c:
        result = c.upload(representation, site)
    _print_want(result, json)


def _print_want(result: dict[str, Any], json: bool) -> None:
    if json:
        print_json(result)
        return
    present = result.get("now_present", 0)
    waiting = result.get("now_queued", 0) + result.get("now_in_progress", 0)
    if waiting == 0 and present:
        console.print(f"representation {result['representation_id']} is already on {result['site']} ({present} files)")
    else:
        console.print(
            f"representation {result['representation_id']}: {waiting} files queued for {result['site']}"
            + (f", {present} already there" if present else "")
        )


@app.command()
def remove(representation: IdArg, site: SiteOpt = None, json: JsonOpt = False) -> None:
    """Delete a site's copy (default: the active site), refused if min_copies would be broken."""
    with client() as c:
        result = c.remove(representation, site)
    if json:
        print_json({"site": result.site, "deleted": result.deleted, "dropped_requests": result.dropped_requests})
    else:
        console.print(f"removed {result.deleted} files of representation {representation} from {result.site}")


@app.command()
def reset(
    representation: IdArg,
    site: SiteOpt = None,
    file: Annotated[int | None, typer.Option("--file", help="Only this file id.")] = None,
    json: JsonOpt = False,
) -> None:
    """Re-sync: clear attempts and errors and queue again (with --site: verified copies too)."""
    with client() as c:
        result = c.reset(representation, site, file_id=file)
    if json:
        print_json(result)
    else:
        msg = f"queued {result['requeued']} files again on {', '.join(result['sites'])}"
        if result.get("kept_only_copy"):
            msg += f"; kept {result['kept_only_copy']} files that have no other verified copy"
        console.print(msg)


@app.command()
def priority(
    representation: IdArg,
    value: Annotated[int, typer.Argument(help="1-1000, higher first.")],
    site: SiteOpt = None,
    json: JsonOpt = False,
) -> None:
    """Set a representation's priority (1-1000, default 50; higher is transferred first)."""
    with client() as c:
        result = c.set_priority(representation, value, site)
    if json:
        print_json(result)
    else:
        console.print(f"representation {representation}: priority {value}")


def _pause_cmd(
    paused: bool, project: str | None, site: str | None, representation: int | None, json: bool, worker: bool = False
) -> None:
    with client() as c:
        result = (
            c.pause(project=project, site=site, representation=representation, worker=worker)
            if paused
            else c.resume(project=project, site=site, representation=representation, worker=worker)
        )
    if json:
        print_json(result)
        return
    scope = result["scope"]
    what = {
        "everything": "all syncing",
        "project": f"project {result.get('project')}",
        "site": f"site {result.get('site')}",
        "project site": f"site {result.get('site')} in project {result.get('project')}",
        "representation": f"representation {result.get('representation_id')}"
        + (f" on {result['site']}" if result.get("site") else ""),
        "worker": f"the workers of this machine ({result.get('site_id')})",
    }[scope]
    console.print(("paused " if paused else "resumed ") + what)


WorkerOpt = Annotated[bool, typer.Option("--worker", help="This machine's workers as a whole.")]


@app.command()
def pause(
    project: ProjectOpt = None,
    site: SiteOpt = None,
    representation: Annotated[
        int | None, typer.Option("--representation", "-r", help="One representation (with --site: on that site).")
    ] = None,
    worker: WorkerOpt = False,
    json: JsonOpt = False,
) -> None:
    """Pause a representation (x site), a project, a site, this machine's workers (--worker), or
    everything (no options). Persistent."""
    _pause_cmd(True, project, site, representation, json, worker)


@app.command()
def resume(
    project: ProjectOpt = None,
    site: SiteOpt = None,
    representation: Annotated[
        int | None, typer.Option("--representation", "-r", help="One representation (with --site: on that site).")
    ] = None,
    worker: WorkerOpt = False,
    json: JsonOpt = False,
) -> None:
    """Resume what `pause` paused (same options)."""
    _pause_cmd(False, project, site, representation, json, worker)


# ---------------------------------------------------------------------- engine


def run_with_progress(c: Client, worker: Worker, project: str | None = None, quiet: bool = False) -> RunReport:
    """Run ``worker`` in a thread while drawing its progress; Ctrl-C / SIGTERM stop it cleanly."""
    from rich.live import Live

    from sitesync.engine.report import RunReport

    view = c.view()
    pairs: list[tuple[int, str]] = []
    for p in c.store.projects():
        if project and p.name != project:
            continue
        try:
            pv = view.project(p.name)
        except Exception:
            continue
        pairs.extend((p.id, s) for s in pv.reachable_sites)
    files, size = c.store.pending_totals(pairs)
    report: list[RunReport] = []
    thread = threading.Thread(target=lambda: report.append(worker.run()), name="sitesync-worker", daemon=True)
    previous = {sig: signal.signal(sig, lambda *_: worker.stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
    thread.start()
    try:
        if quiet:
            while thread.is_alive():
                thread.join(0.5)
        elif not console.is_terminal:
            # logs and pipes get a progress line every second instead of a redrawn bar
            last = 0.0
            while thread.is_alive():
                thread.join(0.1)
                if time.monotonic() - last >= 1.0 or not thread.is_alive():
                    last = time.monotonic()
                    console.print(progress_line(worker.progress.snapshot(), files, size))
        else:
            render = sync_progress_view(worker.progress.snapshot, files, size)
            with Live(render(), console=console.real, refresh_per_second=8, transient=False) as live:
                while thread.is_alive():
                    thread.join(0.125)
                    live.update(render())
                live.update(render())
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    return report[0] if report else RunReport()


@app.command()
def sync(
    once: Annotated[bool, typer.Option("--once", help="Stop when no due work is left.")] = False,
    project: ProjectOpt = None,
    site: Annotated[list[str] | None, typer.Option("--site", "-s", help="Only transfer to these sites.")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-j", help="Parallel transfers.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be transferred and skipped now; change nothing.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", help="With --dry-run: files listed per queue.")] = 50,
    json: JsonOpt = False,
) -> None:
    """Run the sync engine in the foreground with a progress display (--dry-run: only say what it
    would do).

    With --once the exit code tells whether the work it was asked to do is done: 0 done (nothing
    left in the queues it serves), 3 files failed for good (see `sitesync status`, re-sync with
    `sitesync reset`), 4 work remains (waiting for a retry, leased by another running worker, or
    no reachable copy to read yet), 5 a site could not be reached (its files stay queued), 2 bad
    input. The summary line and --json say which files and sites.
    """
    if dry_run:
        from sitesync.cli.operations import print_plan

        with client() as c:
            plan = c.plan(project, site, limit=limit)
        if json:
            print_json(plan)
        else:
            print_plan(plan)
        return
    _setup_logging(logging.WARNING)
    with client() as c:
        worker = c.worker(once=once, projects=[project] if project else None, targets=site, concurrency=concurrency)
        try:
            report = run_with_progress(c, worker, project, quiet=json)
        finally:
            if worker.wake is not None:
                worker.wake.close()
    _print_report(report, json, once)
    if once and report.exit_code:
        raise typer.Exit(report.exit_code)


def _print_report(report: RunReport, json: bool, once: bool = True) -> None:
    unreachable = [f"site {site} unreachable for project {p}: {why}" for p, site, why in report.unreachable]
    if json:
        data: dict[str, object] = {
            "transferred": report.transferred,
            "failed_attempts": report.failed_attempts,
            "failed_files": report.failed_files,
            "deferred": report.deferred,
            "bytes": report.bytes,
            "seconds": round(report.seconds, 3),
            "errors": [*report.errors, *unreachable],
        }
        if once:
            data["result"] = report.result
            data["exit_code"] = report.exit_code
            data["unreachable_sites"] = [
                {"project": p, "site": site, "reason": why} for p, site, why in report.unreachable
            ]
            data["remaining"] = report.remaining
        print_json(data)
        return
    rate = report.bytes / report.seconds if report.seconds > 0 else 0
    parts = [
        f"transferred {report.transferred} files ({human_size(report.bytes)}) in {report.seconds:.1f}s"
        + (f", {human_size(rate)}/s" if report.transferred else "")
    ]
    if report.failed_attempts:
        parts.append(f"{report.failed_attempts} failed attempts")
    if report.deferred:
        parts.append(f"{report.deferred} put back because a site could not be used")
    left = report.remaining
    waiting = [
        f"{left[key]} {words}"
        for key, words in (
            ("failed", "failed for good (see `sitesync status`; `sitesync reset` queues them again)"),
            ("due", "queued"),
            ("retry_later", "waiting for a retry"),
            ("in_progress", "being transferred by another worker"),
        )
        if left.get(key)
    ]
    if waiting:
        parts.append("left: " + ", ".join(waiting))
    console.print("; ".join(parts))
    for site_line in unreachable:
        console.print(site_line)
    if once and report.result != "done":
        console.print(f"not done ({report.result}): exit code {report.exit_code}")


@app.command()
def worker(
    project: ProjectOpt = None,
    site: Annotated[list[str] | None, typer.Option("--site", "-s", help="Only transfer to these sites.")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-j", help="Parallel transfers.")] = None,
    lease: Annotated[
        float,
        typer.Option(
            "--lease",
            help="Lease seconds, the backstop: a dead worker's files return at once on its own machine, "
            "after 20 s without heartbeat elsewhere, after this when its loop hangs.",
        ),
    ] = 60.0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Most files claimed at once.")] = 256,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the engine headless as a service (logs to stderr); SIGTERM or Ctrl-C stop it cleanly."""
    from sitesync.engine.worker import run_until_signalled

    _setup_logging(getattr(logging, log_level.upper(), logging.INFO))
    log = logging.getLogger("sitesync.worker")
    with client() as c:
        w = wait_for_database(
            lambda: c.worker(
                projects=[project] if project else None,
                targets=site,
                concurrency=concurrency,
                lease_seconds=lease,
                batch_size=batch_size,
            ),
            log,
        )
        if w is None:
            return  # stopped while waiting for the database
        log.info("worker %s started (database %s)", w.worker_id, c.store.display_url)
        try:
            report = run_until_signalled(w, (signal.SIGTERM, signal.SIGINT))
        finally:
            if w.wake is not None:
                w.wake.close()
        log.info(
            "worker stopped: %d files transferred, %d failed attempts, %.1fs",
            report.transferred,
            report.failed_attempts,
            report.seconds,
        )


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0 picks a free one).")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="SITESYNC_TOKEN",
            help="The token every API request must send (default: this machine's token file, created on the "
            "first start; `sitesync token show` prints it).",
        ),
    ] = None,
    no_token: Annotated[
        bool,
        typer.Option(
            "--no-token",
            help="Serve WITHOUT a token (loopback only): every user and process of this machine can then use "
            "the API. Only for a single-user machine.",
        ),
    ] = False,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Serve the API and dashboard only.")] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the worker, the REST API (/api/v1) and the web dashboard (/) in one process. The first line
    printed holds a one-time login link for the dashboard."""
    from sitesync.api.server import check_port
    from sitesync.api.server import serve as run_server

    check_port(port)
    level = log_level.lower()
    if level not in ("debug", "info", "warning", "error"):
        from sitesync.errors import InvalidInputError

        raise InvalidInputError(f"invalid --log-level {log_level!r}: use debug, info, warning or error")
    _setup_logging(getattr(logging, level.upper()))
    with client() as c:

        def database_answers() -> bool:
            c.store.ping()
            return True

        if wait_for_database(database_answers, logging.getLogger("sitesync.serve")) is None:
            return  # stopped while waiting for the database
        run_server(c, host=host, port=port, token=token, no_token=no_token, run_worker=not no_worker, log_level=level)


def _setup_logging(level: int) -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


@app.command()
def demo(
    dir: Annotated[Path | None, typer.Option("--dir", help="Where to build the throwaway studio.")] = None,
    frames: Annotated[int, typer.Option("--frames", help="Frames in the sample image sequence.")] = 120,
) -> None:
    """Build a throwaway studio (SQLite, local-drive sites, sample publishes) and sync it."""
    from sitesync.cli.demo import run_demo

    run_demo(dir, frames=frames)


# the studio workflow commands (validate, fsck, wait, clear, wants) and the studio operations
# (path, import) register themselves on `app`
from sitesync.cli import access as _access  # noqa: E402, F401  (token, dashboard, secret)
from sitesync.cli import operations as _operations  # noqa: E402, F401
from sitesync.cli import work as _work  # noqa: E402, F401  (work: workfiles)
from sitesync.cli import workflows as _workflows  # noqa: E402, F401

__all__ = ["app", "run_with_progress"]
