"""One representation: its files on every site, and actions on it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from sitesync.api.app import ApiContext
from sitesync.api.models import ActionOut, DetailOut, PriorityIn, RemoveIn, ResetIn, SiteIn, WantIn
from sitesync.api.routes.actions import perform
from sitesync.api.routes.common import AUTH, context, errors

router = APIRouter(tags=["representations"], dependencies=AUTH)

RepId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Representation id.")]
ACTION_ERRORS = errors(400, 404, 409, 415, 502)


@router.get("/representations/{rep_id}", response_model=DetailOut, responses=errors(404))
def detail(rep_id: RepId, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """The representation on every site, each file on every site (status, progress, attempts,
    last error, size, hash) and its latest events."""
    return ctx.client.sync_queue_detail(rep_id, snapshot=ctx.snapshot())


@router.post("/representations/{rep_id}/download", response_model=ActionOut, responses=ACTION_ERRORS)
def download(rep_id: RepId, body: WantIn, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Want it on the active site (or ``site``): queue what is missing, retry what failed."""
    return perform(ctx, "download", rep_id, site=body.site, priority=body.priority)


@router.post("/representations/{rep_id}/upload", response_model=ActionOut, responses=ACTION_ERRORS)
def upload(rep_id: RepId, body: WantIn, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Want it on the remote site (or ``site``)."""
    return perform(ctx, "upload", rep_id, site=body.site, priority=body.priority)


@router.post("/representations/{rep_id}/reset", response_model=ActionOut, responses=ACTION_ERRORS)
def reset(rep_id: RepId, body: ResetIn, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Re-sync on the active site, the remote site or everywhere; the whole representation or one file."""
    return perform(ctx, "reset", rep_id, site=body.site, scope=body.scope, file_id=body.file_id)


@router.post("/representations/{rep_id}/remove", response_model=ActionOut, responses=ACTION_ERRORS)
def remove(rep_id: RepId, body: RemoveIn, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Delete the site's copy (default: the active site). Refused with 409 and the reason when it
    would leave fewer than ``min_copies`` verified copies elsewhere."""
    return perform(ctx, "remove", rep_id, site=body.site)


@router.post("/representations/{rep_id}/priority", response_model=ActionOut, responses=ACTION_ERRORS)
def priority(rep_id: RepId, body: PriorityIn, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Set the priority (1-1000, higher first) on one site or every site it is wanted on."""
    return perform(ctx, "priority", rep_id, site=body.site, priority=body.priority)


@router.post("/representations/{rep_id}/pause", response_model=ActionOut, responses=ACTION_ERRORS)
def pause(rep_id: RepId, body: SiteIn, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Pause it on one site or every site it is wanted on (file states are kept as they are)."""
    return perform(ctx, "pause", rep_id, site=body.site)


@router.post("/representations/{rep_id}/resume", response_model=ActionOut, responses=ACTION_ERRORS)
def resume(rep_id: RepId, body: SiteIn, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Resume it on one site or every site it is wanted on."""
    return perform(ctx, "resume", rep_id, site=body.site)
