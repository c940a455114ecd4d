"""Health, live progress and pauses above representation level (project, site, worker, all)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from sitesync import __version__
from sitesync.api.app import ApiContext
from sitesync.api.models import HealthOut, PauseIn, PauseOut, PauseResultOut, ProgressOut, WorkerState
from sitesync.api.routes.common import AUTH, context, errors
from sitesync.engine.planner import worker_paused

router = APIRouter(tags=["health and control"], dependencies=AUTH)


def worker_state(ctx: ApiContext) -> WorkerState:
    return WorkerState(
        running=ctx.worker_running,
        paused=worker_paused(ctx.client.store.pauses(), ctx.client.site_id),
        id=ctx.worker.worker_id if ctx.worker is not None else None,
        unavailable_sites={f"{project}/{site}": why for (project, site), why in ctx.health().items()},
    )


@router.get("/health", response_model=HealthOut, responses=errors())
def health(ctx: ApiContext = Depends(context)) -> HealthOut:
    """Whether the server, its database and its worker are up."""
    client = ctx.client
    return HealthOut(
        status="ok",
        version=__version__,
        site_id=client.site_id,
        database=client.store.display_url,
        auth=ctx.token is not None,
        worker=worker_state(ctx),
    )


@router.get("/progress", response_model=ProgressOut, responses=errors())
def progress(ctx: ApiContext = Depends(context)) -> ProgressOut:
    """Cheap to poll (every second is fine): the in-process worker's running transfers and a
    ``marker`` that changes whenever something was recorded, so clients reload lists only then."""
    pauses = [PauseOut.model_validate(p) for p in ctx.client.pause_list()]
    live = ctx.client.live_progress(ctx.snapshot())
    return ProgressOut(**live, worker_state=worker_state(ctx), pauses=pauses)


@router.get("/pauses", response_model=list[PauseOut], responses=errors())
def pauses(ctx: ApiContext = Depends(context)) -> list[dict[str, Any]]:
    """Every pause above representation level, with who paused it and when."""
    return ctx.client.pause_list()


def _pause(ctx: ApiContext, body: PauseIn, paused: bool) -> dict[str, Any]:
    call = ctx.client.pause if paused else ctx.client.resume
    result = call(project=body.project, site=body.site, worker=body.worker)
    ctx.woke()
    return {"changed": bool(result.get("changed", True)), **result}


@router.post("/pause", response_model=PauseResultOut, responses=errors(400, 404, 415))
def pause(body: PauseIn, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Pause a project, a site, a site in a project, this machine's workers (``worker: true``), or
    with an empty body all syncing everywhere. Persistent; running transfers finish."""
    return _pause(ctx, body, True)


@router.post("/resume", response_model=PauseResultOut, responses=errors(400, 404, 415))
def resume(body: PauseIn, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Undo a pause (same body as /pause); the worker looks at its queues at once."""
    return _pause(ctx, body, False)
