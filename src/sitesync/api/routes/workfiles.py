"""Workfile sync (issue 15) under ``/projects/{project}/workfiles``: status, one sync pass,
conflicts and their resolution, history and restore, locks. Each route calls one client method
(``facade/workfiles.py``) and returns its dataclass as JSON."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from sitesync.api.app import ApiContext
from sitesync.api.routes.common import AUTH, context, errors
from sitesync.api.workfiles_models import (
    WorkfileConflictOut,
    WorkfileLockOut,
    WorkfileStatusOut,
    WorkfileVersionOut,
    WorkPathIn,
    WorkResolutionOut,
    WorkResolveIn,
    WorkRestoreIn,
    WorkSyncIn,
    WorkSyncOut,
    WorkUnlockIn,
    WorkUnlockOut,
)

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ProjectPath = Annotated[str, Path(pattern=NAME, description="Project name.")]
BASE = "/projects/{project}/workfiles"

router = APIRouter(tags=["workfiles"], dependencies=AUTH)


def _out(value: Any) -> Any:
    if isinstance(value, list):
        return [dataclasses.asdict(v) for v in value]
    return dataclasses.asdict(value)


@router.get(BASE, response_model=list[WorkfileStatusOut], responses=errors(404))
def work_status(
    project: ProjectPath,
    ctx: ApiContext = Depends(context),
    path: Annotated[str | None, Query(max_length=4096, description="Only paths matching this glob.")] = None,
) -> Any:
    """Each tracked workfile with its version here, on the remote site and on every workfile site,
    and its state (in_sync, modified_here, newer_elsewhere, syncing, conflict, deleted, locked_by)."""
    return _out(ctx.client.work_status(project, path))


@router.post(f"{BASE}/sync", response_model=WorkSyncOut, responses=errors(404, 415))
def work_sync(project: ProjectPath, body: WorkSyncIn, ctx: ApiContext = Depends(context)) -> Any:
    """One pass: scan this server's work areas, record versions (conflicts kept), run the transfers."""
    return _out(ctx.client.work_sync(project))


@router.get(f"{BASE}/conflicts", response_model=list[WorkfileConflictOut], responses=errors(404))
def work_conflicts(
    project: ProjectPath,
    ctx: ApiContext = Depends(context),
    all: Annotated[bool, Query(description="Include resolved conflicts.")] = False,
) -> Any:
    """Workfiles changed on two sites from the same base, both contents kept; open ones first."""
    return _out(ctx.client.work_conflicts(project, include_resolved=all))


@router.post(f"{BASE}/resolve", response_model=WorkResolutionOut, responses=errors(404, 409, 415))
def work_resolve(project: ProjectPath, body: WorkResolveIn, ctx: ApiContext = Depends(context)) -> Any:
    """Resolve a workfile's conflicts keeping local, remote or both; nothing is deleted."""
    return _out(ctx.client.work_resolve(project, body.path, body.keep, root=body.root))


@router.get(f"{BASE}/history", response_model=list[WorkfileVersionOut], responses=errors(404))
def work_history(
    project: ProjectPath,
    path: Annotated[str, Query(min_length=1, max_length=4096, description="The workfile's path.")],
    ctx: ApiContext = Depends(context),
    root: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Its root.")] = None,
) -> Any:
    """Every version of a workfile, oldest first."""
    return _out(ctx.client.work_history(project, path, root=root))


@router.post(f"{BASE}/restore", response_model=WorkfileVersionOut, responses=errors(404, 409, 415))
def work_restore(project: ProjectPath, body: WorkRestoreIn, ctx: ApiContext = Depends(context)) -> Any:
    """Bring an old version back as the current content (a new version that propagates)."""
    return _out(ctx.client.work_restore(project, body.path, body.version, root=body.root))


@router.post(f"{BASE}/lock", response_model=WorkfileLockOut, responses=errors(404, 409, 415))
def work_lock(project: ProjectPath, body: WorkPathIn, ctx: ApiContext = Depends(context)) -> Any:
    """Lock a workfile for the server's user on its site; 409 says who holds it otherwise."""
    return _out(ctx.client.work_lock(project, body.path, root=body.root))


@router.post(f"{BASE}/unlock", response_model=WorkUnlockOut, responses=errors(404, 409, 415))
def work_unlock(project: ProjectPath, body: WorkUnlockIn, ctx: ApiContext = Depends(context)) -> Any:
    """Release the lock, or break another's with ``force`` (recorded as an event)."""
    return {"unlocked": ctx.client.work_unlock(project, body.path, force=body.force, root=body.root)}
