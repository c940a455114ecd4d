"""OpenPype representation documents (one JSON document per line, as ``mongoexport`` writes them
from a project's collection) read into ``ImportedRepresentation``s.

Used per document: ``_id``, ``type`` (must be ``representation``), ``name``, ``context`` (``asset``
and ``hierarchy`` or ``folder.path``, ``subset``, ``version``, ``representation``), and per file
``path`` (``{root[NAME]}/...``), ``size`` and ``sites[]``: ``name``, ``created_dt`` (present when
set, else wanted), ``tries``, ``error``, ``last_failed_dt``, ``priority``, ``paused``. Everything
else is counted in the report as not mapped, with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from sitesync.migration.records import (
    FAILED,
    PRESENT,
    QUEUED,
    ImportedFile,
    ImportedRepresentation,
    ImportedSite,
    Report,
    plain,
    timestamp,
    whole_number,
)
from sitesync.state.imports import ReplicaImport

USED_DOC_KEYS = {"_id", "type", "name", "context", "files"}
USED_FILE_KEYS = {"path", "size", "sites"}
USED_SITE_KEYS = {"name", "created_dt", "tries", "error", "last_failed_dt", "priority", "paused"}
NOT_KEPT = {
    "files[].hash": "OpenPype's hash is name|mtime|size, not the content: sitesync hashes the bytes",
    "files[]._id": "sitesync numbers its own files",
    "files[].sites[].id": "a provider's own file id; sitesync finds files by path",
    "files[].sites[].progress": "progress of an OpenPype transfer; the transfer starts over in sitesync",
}


def read_lines(lines: Iterable[str], report: Report, retry_count: int) -> Iterator[ImportedRepresentation]:
    """Each non-empty line is one document; a line that is not JSON is reported, not skipped silently."""
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        report.documents += 1
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            report.problem(f"line {number}", f"not a JSON document ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(doc, dict):
            report.problem(f"line {number}", "not a JSON object")
            continue
        rep = from_document(plain(doc), report, retry_count, f"line {number}")
        if rep is not None:
            yield rep


def representation_context(ctx: dict[str, Any], doc_name: Any) -> tuple[str, str, int | str, str] | str:
    """(folder, product, version, name) from a representation context, or what is missing."""
    folder = ""
    if isinstance(ctx.get("folder"), dict) and ctx["folder"].get("path"):
        folder = str(ctx["folder"]["path"]).strip("/")
    elif ctx.get("asset"):
        hierarchy = str(ctx.get("hierarchy") or "").strip("/")
        folder = f"{hierarchy}/{ctx['asset']}" if hierarchy else str(ctx["asset"])
    product = ctx.get("subset")
    if not product and isinstance(ctx.get("product"), dict):
        product = ctx["product"].get("name")
    name = ctx.get("representation") or doc_name
    version: int | str | None = None
    raw = ctx.get("version")
    if ctx.get("hero") is True or (isinstance(raw, str) and raw.strip().lower() == "hero"):
        version = "hero"
    elif (number := whole_number(raw)) is not None:
        version = "hero" if number < 0 else number  # AYON numbers hero versions below zero
    given = {"folder": folder, "product": product, "version": version, "name": name}
    missing = [key for key, value in given.items() if value is None or value == ""]
    if missing or version is None:
        return "the context lacks " + ", ".join(missing)
    return folder, str(product), version, str(name)


def from_document(doc: dict[str, Any], report: Report, retry_count: int, where: str) -> ImportedRepresentation | None:
    source_id = str(doc.get("_id") or where)
    if doc.get("type") not in (None, "representation"):
        report.problem(source_id, f"not a representation document (type {doc.get('type')!r})")
        return None
    context = representation_context(doc.get("context") or {}, doc.get("name"))
    if isinstance(context, str):
        report.problem(source_id, context)
        return None
    for key in set(doc) - USED_DOC_KEYS:
        report.not_mapped(key, "pipeline data sitesync does not keep")
    files_in = doc.get("files")
    if not isinstance(files_in, list) or not files_in:
        report.problem(source_id, "the document has no files")
        return None
    files: list[ImportedFile] = []
    sites: dict[str, ImportedSite] = {}
    for f in files_in:
        path, size = (f or {}).get("path"), whole_number((f or {}).get("size"))
        if not isinstance(path, str) or size is None or size < 0:
            report.problem(source_id, f"a file lacks its path or size ({str(f)[:200]})")
            return None
        files.append(ImportedFile(path, size))
        for key in set(f) - USED_FILE_KEYS:
            report.not_mapped(f"files[].{key}", NOT_KEPT.get(f"files[].{key}", "no equivalent in sitesync"))
        for record in f.get("sites") or []:
            if not isinstance(record, dict) or not record.get("name"):
                report.not_mapped("files[].sites[]", "a site record without a name")
                continue
            for key in set(record) - USED_SITE_KEYS:
                report.not_mapped(f"files[].sites[].{key}", NOT_KEPT.get(f"files[].sites[].{key}", "no equivalent"))
            site = sites.setdefault(str(record["name"]), ImportedSite())
            site.files[path] = _replica(record, retry_count)
            priority = whole_number(record.get("priority"))
            if priority is not None:
                site.priority = max(priority, site.priority or priority)
            site.paused = site.paused or record.get("paused") is True
    folder, product, version, name = context
    return ImportedRepresentation(source_id, folder, product, version, name, files, sites)


def _replica(record: dict[str, Any], retry_count: int) -> ReplicaImport:
    created = timestamp(record.get("created_dt"))
    if created is not None:
        return ReplicaImport(PRESENT, present_since=created)
    tries = whole_number(record.get("tries")) or 0
    error = record.get("error")
    failed_at = timestamp(record.get("last_failed_dt"))
    status = FAILED if tries >= retry_count else QUEUED
    return ReplicaImport(status, tries, str(error) if error else None, failed_at)


__all__ = ["from_document", "read_lines", "representation_context"]
