"""The event history: who asked for what, what moved, what failed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from sitesync.api.app import ApiContext
from sitesync.api.models import EventsOut
from sitesync.api.routes.common import AUTH, context, errors

router = APIRouter(tags=["events"], dependencies=AUTH)

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
EventId = Annotated[int | None, Query(ge=0, le=2**31 - 1)]


@router.get("/events", response_model=EventsOut, responses=errors(400, 404))
def list_events(
    ctx: ApiContext = Depends(context),
    project: Annotated[str | None, Query(pattern=NAME)] = None,
    representation_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    kind: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=r"^[a-z_,]*$",
            description="Comma-separated kinds: publish, request, transfer, failure, deferred, reset, "
            "priority, pause, resume, remove_begin, remove, lease_expired, site_unavailable, settings...",
        ),
    ] = None,
    site: Annotated[str | None, Query(pattern=NAME)] = None,
    q: Annotated[
        str | None, Query(max_length=200, pattern=r"^[^\x00]*$", description="Text in the message or actor.")
    ] = None,
    before_id: Annotated[EventId, Query(description="Older than this id (paging back).")] = None,
    after_id: Annotated[EventId, Query(description="Newer than this id (polling).")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Newest first."""
    return ctx.client.history(
        project=project,
        representation=representation_id,
        kinds=kind,
        site=site,
        text=q,
        before_id=before_id,
        after_id=after_id,
        limit=limit,
    )
