"""What every route module shares: the request's context, the declared auth scheme and the
documented error responses."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from sitesync.api.app import ApiContext
from sitesync.api.models import ErrorOut

# Declares bearer auth in the OpenAPI document; the check itself is the guard middleware's.
bearer = HTTPBearer(auto_error=False, description="Needed when the server was started with a token.")
AUTH = [Depends(bearer)]


def context(request: Request) -> ApiContext:
    return request.app.state.ctx


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {
        400: "Bad input or an action that cannot be done: the message says what to do.",
        401: "Missing or wrong bearer token.",
        403: "Refused: another origin, a host name that is not served, or a setting only a machine's local "
        "settings may hold.",
        404: "Unknown project, site, representation or file.",
        409: "Refused by a guard (min_copies) or in conflict with the current state.",
        415: "Changes need Content-Type: application/json.",
        422: "The request does not match the schema, or a setting's value is refused.",
        502: "The storage of a site failed.",
        503: "The state database cannot be used.",
    }
    chosen = sorted({400, 401, 403, 422, 503, *codes})
    return {code: {"model": ErrorOut, "description": described[code]} for code in chosen}
