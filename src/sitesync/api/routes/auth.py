"""Logging in: the dashboard trades the token for a session cookie; a holder of the token asks for
a one-time login link (``sitesync dashboard``). See ``api/auth.py``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from sitesync.api.app import ApiContext, error_response
from sitesync.api.auth import (
    LOGIN_CODE_SECONDS,
    LOGIN_PATH,
    SESSION_COOKIE,
    SESSION_SECONDS,
    session_value,
    token_matches,
)
from sitesync.api.models import LoginIn, LoginLinkIn, LoginLinkOut, SessionOut
from sitesync.api.routes.common import AUTH, context, errors

router = APIRouter(tags=["login"])


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session_value(token),
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


@router.post("/auth/session", response_model=SessionOut, responses=errors(415))
def log_in(body: LoginIn, request: Request, ctx: ApiContext = Depends(context)) -> Response | SessionOut:
    """Trade the token for a session cookie (HttpOnly, SameSite=Strict, valid 7 days): the
    dashboard's login. A wrong token is refused with 401."""
    if ctx.token is None:
        return SessionOut(auth=False)
    if not token_matches(body.token.strip(), ctx.token):
        return error_response(
            401,
            "Unauthorized",
            "token refused: it is not this server's token (`sitesync token show` on the server's machine prints it)",
        )
    response = SessionOut(auth=True, expires_in=SESSION_SECONDS)
    out = Response(response.model_dump_json(), media_type="application/json")
    set_session_cookie(out, request, ctx.token)
    return out


@router.delete("/auth/session", response_model=SessionOut, responses=errors(415))
def log_out(ctx: ApiContext = Depends(context)) -> Response:
    """Forget this browser's session cookie."""
    out = Response(SessionOut(auth=ctx.token is not None).model_dump_json(), media_type="application/json")
    out.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return out


@router.post("/auth/login-links", response_model=LoginLinkOut, responses=errors(415), dependencies=AUTH)
def login_link(_body: LoginLinkIn, request: Request, ctx: ApiContext = Depends(context)) -> LoginLinkOut:
    """A new one-time dashboard login link (valid once, for 15 minutes); needs the token."""
    code = ctx.login_codes.issue()
    return LoginLinkOut(
        url=f"{str(request.base_url).rstrip('/')}{LOGIN_PATH}?code={code}", expires_in=LOGIN_CODE_SECONDS
    )
