"""AYON Site Sync state read into ``ImportedRepresentation``s.

AYON keeps one row per (representation, site) in ``project_<name>.sitesync_files_status``:
``representation_id``, ``site_name``, ``status`` (the row's aggregate), ``priority`` and ``data``
(``{"files": {<file id>: {status, size, timestamp, message, retries, hash}}}``). The rows carry
file ids only; paths and names come from the representation entities (``id``, ``name``,
``context``, ``files[]`` with ``id``, ``path``, ``size``) as AYON's REST API returns them. The file
given to ``sitesync import ayon-sitesync`` is one JSON object::

    {"representations": [<representation entity>, ...],
     "sitesync": [<row>, ...]}

Rows may spell keys as the database (``representation_id``, ``site_name``) or as the API
(``representationId``, ``siteName``); ``data`` may be an object or a JSON string (a database dump).
File states: 4 synced = present (since ``timestamp``); 2 failed = failed when ``retries`` reached
the retry count, else queued; 1 queued, 0 in progress (the transfer starts over) and -1 not
available on a row that exists = queued; 3 paused = queued with the representation paused there.
"""

from __future__ import annotations

import json
from typing import Any

from sitesync.migration.openpype_representations import representation_context
from sitesync.migration.records import (
    FAILED,
    PRESENT,
    QUEUED,
    ImportedFile,
    ImportedRepresentation,
    ImportedSite,
    Report,
    plain,
    whole_number,
)
from sitesync.state.imports import ReplicaImport

NOT_AVAILABLE, IN_PROGRESS, QUEUED_STATUS, FAILED_STATUS, PAUSED_STATUS, SYNCED = -1, 0, 1, 2, 3, 4
ROW_KEYS = {"representation_id", "representationId", "site_name", "siteName", "status", "priority", "data"}
FILE_STATE_KEYS = {"status", "size", "timestamp", "message", "retries", "hash"}
ENTITY_KEYS = {"id", "name", "context", "files"}


def _key(row: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in row:
            return row[name]
    return None


def read_document(text: str, report: Report, retry_count: int) -> list[ImportedRepresentation]:
    try:
        doc = plain(json.loads(text))
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({exc}); nothing was imported") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("representations"), list):
        raise ValueError(
            'expected one JSON object {"representations": [...], "sitesync": [...]}; see docs/migration.md'
        )
    rows = next((doc[k] for k in ("sitesync", "sitesync_files_status", "rows") if k in doc), None)
    if not isinstance(rows, list):
        raise ValueError('the file has no "sitesync" list of sitesync_files_status rows; see docs/migration.md')
    for key in set(doc) - {"representations", "sitesync", "sitesync_files_status", "rows", "project"}:
        report.not_mapped(key, "not part of the Site Sync state")
    entities: dict[str, ImportedRepresentation] = {}
    file_paths: dict[str, dict[str, str]] = {}  # representation id -> file id -> path
    for entity in doc["representations"]:
        report.documents += 1
        rep = _entity(entity, report)
        if rep is not None:
            entities[rep.source_id] = rep
            file_paths[rep.source_id] = {str(f["id"]): str(f["path"]) for f in entity["files"]}
    for number, row in enumerate(rows, 1):
        _row(row, number, entities, file_paths, report, retry_count)
    for rep in entities.values():
        if not rep.sites:
            report.not_mapped("representations[]", "a representation with no Site Sync row: registered nowhere")
    return [rep for rep in entities.values() if rep.sites]


def _entity(entity: Any, report: Report) -> ImportedRepresentation | None:
    if not isinstance(entity, dict) or not entity.get("id"):
        report.problem("representations[]", "an entry without an id")
        return None
    source_id = str(entity["id"])
    context = representation_context(entity.get("context") or {}, entity.get("name"))
    if isinstance(context, str):
        report.problem(source_id, context)
        return None
    files_in = entity.get("files")
    if not isinstance(files_in, list) or not files_in:
        report.problem(source_id, "the representation has no files")
        return None
    files = []
    for f in files_in:
        size = whole_number((f or {}).get("size"))
        if not isinstance(f, dict) or not f.get("id") or not isinstance(f.get("path"), str) or size is None:
            report.problem(source_id, f"a file lacks its id, path or size ({str(f)[:200]})")
            return None
        files.append(ImportedFile(f["path"], size))
        for key in set(f) - {"id", "path", "size"}:
            report.not_mapped(f"representations[].files[].{key}", "no equivalent (sitesync hashes the content)")
    for key in set(entity) - ENTITY_KEYS:
        report.not_mapped(f"representations[].{key}", "pipeline data sitesync does not keep")
    folder, product, version, name = context
    return ImportedRepresentation(source_id, folder, product, version, name, files)


def _row(
    row: Any,
    number: int,
    entities: dict[str, ImportedRepresentation],
    file_paths: dict[str, dict[str, str]],
    report: Report,
    retry_count: int,
) -> None:
    where = f"sitesync[{number}]"
    if not isinstance(row, dict):
        report.problem(where, "a row that is not an object")
        return
    rep_id = _key(row, "representation_id", "representationId")
    site = _key(row, "site_name", "siteName")
    if not rep_id or not site:
        report.problem(where, "a row without representation id or site name")
        return
    rep = entities.get(str(rep_id))
    if rep is None:
        report.problem(str(rep_id), f"a row for site {site} but the representation is not in the file (or was refused)")
        return
    for key in set(row) - ROW_KEYS:
        report.not_mapped(f"sitesync[].{key}", "no equivalent")
    data = row.get("data") or {}
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            report.problem(str(rep_id), f"the row for site {site} has data that is not JSON")
            return
    states = (data or {}).get("files") or {}
    imported = rep.sites.setdefault(str(site), ImportedSite())
    priority = whole_number(row.get("priority"))
    if priority is not None:
        imported.priority = priority
    paths = file_paths[rep.source_id]
    for file_id, path in paths.items():
        state = states.get(file_id)
        if state is None:
            report.not_mapped("sitesync[].data.files", "a file with no state on a site row: queued there")
            imported.files[path] = ReplicaImport(QUEUED)
            continue
        for key in set(state) - FILE_STATE_KEYS:
            report.not_mapped(f"sitesync[].data.files.*.{key}", "no equivalent")
        imported.files[path] = _replica(state, retry_count, imported, report)
    strays = len(set(states) - set(paths))
    if strays:
        report.not_mapped("sitesync[].data.files", "a state for a file the representation does not have", strays)
    if whole_number(row.get("status")) == PAUSED_STATUS:
        imported.paused = True


def _replica(state: dict[str, Any], retry_count: int, site: ImportedSite, report: Report) -> ReplicaImport:
    status = whole_number(state.get("status"))
    retries = whole_number(state.get("retries")) or 0
    message = state.get("message") or None
    if status == SYNCED:
        when = whole_number(state.get("timestamp"))
        return ReplicaImport(PRESENT, present_since=float(when) if when else None)
    if status == FAILED_STATUS:
        return ReplicaImport(FAILED if retries >= retry_count else QUEUED, retries, message)
    if status == PAUSED_STATUS:
        site.paused = True
    elif status == IN_PROGRESS:
        report.not_mapped("sitesync[].data.files.*.status", "in progress in AYON: the transfer starts over (queued)")
    elif status == NOT_AVAILABLE:
        report.not_mapped("sitesync[].data.files.*.status", "not available (-1) on an existing row: queued there")
    elif status != QUEUED_STATUS:
        report.not_mapped("sitesync[].data.files.*.status", f"unknown status {state.get('status')!r}: queued")
    return ReplicaImport(QUEUED, retries, message)


__all__ = ["read_document"]
