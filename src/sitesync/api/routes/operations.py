"""Studio operations: bandwidth limits and current rates, the dry-run plan, path mapping."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from sitesync.api.app import ApiContext
from sitesync.api.operations_models import BandwidthOut, PathOut, PlanOut
from sitesync.api.routes.common import AUTH, context, errors
from sitesync.facade.operations import PLAN_LIMIT_MAX

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

router = APIRouter(tags=["operations"], dependencies=AUTH)


@router.get("/bandwidth", response_model=BandwidthOut, responses=errors())
def bandwidth(ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """This machine's bandwidth limits in force now (its own and each site's, from their
    timetables) and the current rate through each, over every worker process of the machine."""
    return ctx.client.bandwidth()


@router.get("/plan", response_model=PlanOut, responses=errors(400, 404))
def plan(
    ctx: ApiContext = Depends(context),
    project: Annotated[str | None, Query(pattern=NAME, description="Only this project.")] = None,
    site: Annotated[list[str] | None, Query(description="Only transfers to these sites (repeat).")] = None,
    limit: Annotated[int, Query(ge=0, le=PLAN_LIMIT_MAX, description="Files listed per queue.")] = 50,
) -> dict[str, Any]:
    """The dry run: what this machine's worker would transfer now (per queue, in its order: from
    which source, to which site, with bytes) and what it would skip and why. Changes nothing.
    With a worker in this server, its live knowledge of unreachable sites is used."""
    unavailable = ctx.health() if ctx.worker is not None else None
    return ctx.client.plan(project, site, limit=limit, unavailable=unavailable)


@router.get("/path", response_model=PathOut, responses=errors(400, 404))
def map_path(
    path: Annotated[
        str, Query(min_length=1, max_length=4200, description="A path under any site's root, or {root[NAME]}/...")
    ],
    ctx: ApiContext = Depends(context),
    to: Annotated[str | None, Query(pattern=NAME, description="Target site (default: the active site).")] = None,
    project: Annotated[str | None, Query(pattern=NAME, description="The project whose roots to use.")] = None,
    platform: Annotated[
        str | None, Query(pattern=r"^(windows|linux|darwin)$", description="Map for this OS (default: the server's).")
    ] = None,
) -> dict[str, Any]:
    """Where the file at ``path`` (an artist's local path, a studio path on any platform, another
    site's location) lives on site ``to``, and whether the catalog has it: what a render farm
    submitter needs to point jobs at the studio storage. 400 for a path outside every root."""
    return ctx.client.map_path(path, to, project=project, platform=platform)
