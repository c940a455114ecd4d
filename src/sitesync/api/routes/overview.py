"""What a studio coordinator looks at: the overview strip of a project, its sites with numbers,
a site's free space and its conformance test, and bulk actions on every match of a filter."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from sitesync.api.app import ApiContext
from sitesync.api.overview_models import (
    BulkIn,
    BulkOut,
    OverviewOut,
    SiteStatsOut,
    SiteTestIn,
    SiteTestOut,
    SiteUsageOut,
)
from sitesync.api.routes.actions import run_batch
from sitesync.api.routes.common import AUTH, context, errors
from sitesync.errors import ConflictError, InvalidInputError
from sitesync.facade.overview import BULK_LIMIT

router = APIRouter(tags=["overview"], dependencies=AUTH)

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ProjectName = Annotated[str, Path(pattern=NAME, description="Project name.")]
SiteName = Annotated[str, Path(pattern=NAME, description="Site name ('local' = this machine).")]
ProjectQuery = Annotated[str | None, Query(pattern=NAME, description="Resolve the site for this project.")]


@router.get("/projects/{project}/overview", response_model=OverviewOut, responses=errors(404))
def overview(project: ProjectName, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Representations per overall state, and the transfers in progress (bytes done, ETA)."""
    return ctx.client.queue_overview(project, snapshot=ctx.snapshot())


@router.get("/projects/{project}/sites", response_model=list[SiteStatsOut], responses=errors(404))
def project_sites(project: ProjectName, ctx: ApiContext = Depends(context)) -> list[dict[str, Any]]:
    """Every site of the project with files and bytes per state, its latest transfer and
    failure, and whether the worker in this server reaches it or backs off until when."""
    return ctx.client.sites_overview(project, reached=ctx.reached(), backoff=ctx.backoff())


@router.get("/sites/{name}/usage", response_model=SiteUsageOut, responses=errors(404))
def site_usage(name: SiteName, project: ProjectQuery = None, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Free and total bytes of the site's storage, where its provider can tell (asked now)."""
    return ctx.client.site_usage(name, project)


@router.post("/sites/{name}/test", response_model=SiteTestOut, responses=errors(404, 415))
def site_test(name: SiteName, body: SiteTestIn, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Run the provider contract suite against the site (``sitesync site test``), in a scratch
    folder that is removed afterwards."""
    return ctx.client.site_test(name, project=body.project)


@router.post("/projects/{project}/actions", response_model=BulkOut, responses=errors(404, 409, 415))
def bulk(project: ProjectName, body: BulkIn, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """One action on every representation the Sync Queue filter matches (on every page, up to
    2,000). ``expected`` is the count the user confirmed: when the filter now matches more, nothing
    is done (409). Each representation is done on its own, as in ``POST /actions``."""
    filters = body.filter.model_dump(exclude_none=True)
    if "q" in filters:  # the list's quick filter is the facade's ``text``
        filters["text"] = filters.pop("q")
    total, ids = ctx.client.sync_queue_ids(project, **filters)
    if total > body.expected:
        raise ConflictError(
            f"the filter now matches {total} representations, more than the {body.expected} you confirmed; "
            "look at the list again and confirm the new count"
        )
    if total > BULK_LIMIT:
        raise InvalidInputError(
            f"the filter matches {total} representations; act on at most {BULK_LIMIT} at once (narrow the filter)"
        )
    out = run_batch(ctx, body.action, ids, site=body.site, priority=body.priority, scope=body.scope)
    return {**out, "matched": total}
