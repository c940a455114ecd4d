"""Actions on representations: download, upload, re-sync, remove, priority, pause and resume, one
at a time or on a selection. Each action wakes the worker at once."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from sitesync.api.app import ApiContext
from sitesync.api.models import BatchIn, BatchOut
from sitesync.api.routes.common import AUTH, context, errors
from sitesync.errors import InvalidInputError, SitesyncError

router = APIRouter(tags=["actions"], dependencies=AUTH)


def _want_message(verb: str, result: dict[str, Any]) -> str:
    site = result["site"]
    queued, retried = result.get("queued", 0), result.get("retried", 0)
    present = result.get("now_present", 0)
    if not queued and not retried and not result.get("now_queued") and not result.get("now_in_progress"):
        return f"already on {site} ({present} files)"
    parts = [f"{queued} files queued"] if queued else []
    if retried:
        parts.append(f"{retried} failed files retried")
    return f"{verb} to {site}: " + (", ".join(parts) or "already queued")


def perform(
    ctx: ApiContext,
    action: str,
    rep_id: int,
    *,
    site: str | None = None,
    priority: int | None = None,
    scope: str = "all",
    file_id: int | None = None,
) -> dict[str, Any]:
    """Run one action through the client; raises its errors. Returns an ``ActionOut`` dict. (A
    transaction the database aborts as a deadlock victim is run again by the state store.)"""
    return _perform(ctx, action, rep_id, site=site, priority=priority, scope=scope, file_id=file_id)


def _perform(
    ctx: ApiContext,
    action: str,
    rep_id: int,
    *,
    site: str | None,
    priority: int | None,
    scope: str,
    file_id: int | None,
) -> dict[str, Any]:
    client = ctx.client
    result: dict[str, Any]
    if action == "download":
        result = client.download(rep_id, site, priority=priority)
        message = _want_message("download", result)
    elif action == "upload":
        result = client.upload(rep_id, site, priority=priority)
        message = _want_message("upload", result)
    elif action == "reset":
        result = client.resync(rep_id, scope, file_id=file_id, site=site)
        message = f"{result['requeued']} files queued again on {', '.join(result['sites'])}"
        if result.get("kept_only_copy"):
            message += f"; {result['kept_only_copy']} verified copies kept (no other copy to re-copy from)"
    elif action == "remove":
        removed = client.remove(rep_id, site)
        result = {"site": removed.site, "deleted": removed.deleted, "dropped_requests": removed.dropped_requests}
        message = f"removed {removed.deleted} copies from {removed.site}"
        if removed.dropped_requests:
            message += f", dropped {removed.dropped_requests} pending requests"
    elif action == "priority":
        if priority is None:
            raise InvalidInputError("give a priority from 1 to 1000 (higher goes first)")
        result = client.set_priority(rep_id, priority, site)
        message = f"priority {priority} on {result['sites']} sites"
    elif action in ("pause", "resume"):
        call = client.pause if action == "pause" else client.resume
        result = call(representation=rep_id, site=site)
        message = f"{action}d on {result['sites']} sites"
    else:  # the request models only allow the actions above
        raise ValueError(action)
    ctx.woke()
    return {"representation_id": rep_id, "ok": True, "message": message, "result": result}


@router.post("/actions", response_model=BatchOut, responses=errors(415))
def batch(body: BatchIn, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """One action on many representations. Each is done on its own: a refusal (for example the
    ``min_copies`` guard of a removal) is reported in its result and the others go on."""
    return run_batch(
        ctx, body.action, body.representation_ids, site=body.site, priority=body.priority, scope=body.scope
    )


def run_batch(
    ctx: ApiContext, action: str, rep_ids: list[int], *, site: str | None, priority: int | None, scope: str
) -> dict[str, Any]:
    """``action`` on each representation on its own; a refusal is reported and the others go on."""
    results = []
    for rep_id in dict.fromkeys(rep_ids):
        try:
            results.append(perform(ctx, action, rep_id, site=site, priority=priority, scope=scope))
        except SitesyncError as exc:
            results.append({"representation_id": rep_id, "ok": False, "message": str(exc), "error": type(exc).__name__})
    ok = sum(1 for r in results if r["ok"])
    return {"action": action, "ok": ok, "failed": len(results) - ok, "results": results}
