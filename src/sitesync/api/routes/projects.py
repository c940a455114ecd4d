"""Projects and the Sync Queue list of a project's representations."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from sitesync.api.app import ApiContext
from sitesync.api.models import ProjectOut, QueuePageOut
from sitesync.api.routes.common import AUTH, context, errors
from sitesync.errors import NotFoundError
from sitesync.state.listing import SORT_KEYS

router = APIRouter(tags=["projects"], dependencies=AUTH)

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
TEXT = r"^[^\x00]*$"
ProjectName = Annotated[str, Path(pattern=NAME, description="Project name.")]
SortKey = Literal[SORT_KEYS]  # type: ignore[valid-type]
Statuses = Annotated[
    str | None,
    Query(
        max_length=200,
        pattern=r"^[a-z_,]*$",
        description="Comma-separated: failed, removing, in_progress, queued, paused, partial, present, none.",
    ),
]
Text = Annotated[str | None, Query(max_length=200, pattern=TEXT)]


@router.get("/projects", response_model=list[ProjectOut], responses=errors())
def list_projects(ctx: ApiContext = Depends(context)) -> list[dict[str, Any]]:
    """Every project: enabled, paused, syncing, and how many representations failed or wait."""
    return ctx.client.project_states(ctx.health())


@router.get("/projects/{project}", response_model=ProjectOut, responses=errors(404))
def get_project(project: ProjectName, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    for entry in ctx.client.project_states(ctx.health()):
        if entry["name"] == project:
            return entry
    raise NotFoundError(f"unknown project {project!r}; see GET /api/v1/projects")


@router.get("/projects/{project}/representations", response_model=QueuePageOut, responses=errors(400, 404))
def sync_queue(
    project: ProjectName,
    ctx: ApiContext = Depends(context),
    q: Annotated[
        str | None,
        Query(max_length=200, pattern=TEXT, description="Quick filter: every word in the folder, product or name."),
    ] = None,
    folder: Text = None,
    product: Text = None,
    name: Text = None,
    version: Annotated[str | None, Query(pattern=r"^(hero|v?[0-9]{1,9})$", description="3, v003 or hero.")] = None,
    active_status: Statuses = None,
    remote_status: Statuses = None,
    status: Statuses = None,
    active_site: Annotated[
        str | None, Query(pattern=NAME, description="Show this site as the active one (default: the project's).")
    ] = None,
    remote_site: Annotated[
        str | None, Query(pattern=NAME, description="Show this site as the remote one (default: the project's).")
    ] = None,
    sort: SortKey = "folder",
    order: Literal["asc", "desc"] = "asc",
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> QueuePageOut:
    """The Sync Queue: a page of the project's representations with their state on the active
    and remote site. Text filters are case-insensitive; ``total`` counts every match. Sorting
    on a site column puts representations with nothing on that site last."""
    return ctx.client.sync_queue(
        project,
        text=q,
        folder=folder,
        product=product,
        name=name,
        version=version,
        active_status=active_status,
        remote_status=remote_status,
        status=status,
        active_site=active_site,
        remote_site=remote_site,
        sort=sort,
        order=order,
        offset=offset,
        limit=limit,
        snapshot=ctx.snapshot(),
    )
