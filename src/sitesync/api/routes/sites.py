"""Sites: provider, options with secrets masked, pause state and availability."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from sitesync.api.app import ApiContext
from sitesync.api.models import SiteCheckIn, SiteCheckOut, SiteOut
from sitesync.api.routes.common import AUTH, context, errors

router = APIRouter(tags=["sites"], dependencies=AUTH)

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SiteName = Annotated[str, Path(pattern=NAME, description="Site name ('local' = this machine).")]
ProjectQuery = Annotated[str | None, Query(pattern=NAME, description="Resolve roots and switches for this project.")]


def _with_availability(ctx: ApiContext, entry: dict[str, Any], project: str | None) -> dict[str, Any]:
    reasons = [
        why for (pname, site), why in ctx.health().items() if site == entry["name"] and pname in (project, pname)
    ]
    if reasons:
        entry.update(available=False, unavailable_reason=reasons[0])
    elif ctx.worker_running:
        entry.update(available=True if entry.get("enabled", True) else None)
    return entry


@router.get("/sites", response_model=list[SiteOut], responses=errors(404))
def list_sites(project: ProjectQuery = None, ctx: ApiContext = Depends(context)) -> list[dict[str, Any]]:
    """Every site. ``available`` is what the in-process worker found at its last try (null
    without a worker); ``POST /sites/{name}/check`` asks the site now."""
    return [_with_availability(ctx, s, project) for s in ctx.client.sites(project)]


@router.get("/sites/{name}", response_model=SiteOut, responses=errors(404))
def get_site(name: SiteName, project: ProjectQuery = None, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    return _with_availability(ctx, ctx.client.site(name, project, records=False), project)


@router.post("/sites/{name}/check", response_model=SiteCheckOut, responses=errors(404, 415))
def check_site(name: SiteName, body: SiteCheckIn, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Ask the site's provider now whether this machine reaches it (at most 10 seconds)."""
    return ctx.client.check_site(name, body.project)
