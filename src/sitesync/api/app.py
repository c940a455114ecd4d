"""The FastAPI application: the REST API under ``/api/v1`` and the dashboard at ``/``.

``create_app(client, token=..., worker=..., allowed_hosts=...)`` builds it around one
``sitesync.Client``. With a ``worker`` the app runs it in a background thread for its lifetime
and shows its live progress. Routes live in ``api/routes/`` by concern and call only the client.

Protection, in order: requests whose ``Host`` is not one of ``allowed_hosts`` are refused (403:
DNS rebinding); with a token every ``/api/v1`` request except the OpenAPI document, its docs page
and the login itself needs ``Authorization: Bearer <token>`` or the dashboard's session cookie (401
otherwise; see ``api/auth.py``); changes (POST/PUT/PATCH/DELETE) must be ``Content-Type:
application/json`` (415) and must not come from another origin (403), so a web page elsewhere cannot
make a browser act on a loopback server. No CORS headers are ever sent. ``/login?code=...`` turns a
one-time login link into the session cookie.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from sitesync import __version__
from sitesync.api.auth import LOGIN_PATH, SESSION_COOKIE, LoginCodes, session_valid, token_matches
from sitesync.api.docs import serve_docs
from sitesync.client import Client
from sitesync.engine.worker import Worker
from sitesync.errors import (
    ConflictError,
    DatabaseError,
    ForbiddenError,
    GuardRefusedError,
    InvalidSettingError,
    NotFoundError,
    SitesyncError,
    StorageError,
    UserError,
    one_line,
)

log = logging.getLogger("sitesync.api")

API_PREFIX = "/api/v1"
PUBLIC_API_PATHS = {
    f"{API_PREFIX}/openapi.json",
    f"{API_PREFIX}/docs",
    f"{API_PREFIX}/docs/oauth2-redirect",
    f"{API_PREFIX}/auth/session",  # checks the token itself
}
MAINTENANCE_SECONDS = 900.0


@dataclass
class ApiContext:
    """What every route needs: the client, and the worker running in this process (if any)."""

    client: Client
    worker: Worker | None = None
    token: str | None = None
    login_codes: LoginCodes = field(default_factory=LoginCodes)
    worker_thread: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def worker_running(self) -> bool:
        return self.worker_thread is not None and self.worker_thread.is_alive()

    def snapshot(self) -> Any:
        return self.worker.progress.snapshot() if self.worker is not None else None

    def health(self) -> dict[tuple[str, str], str]:
        return self.worker.site_health() if self.worker is not None else {}

    def backoff(self) -> dict[tuple[str, str], tuple[str, float]]:
        return self.worker.site_backoff() if self.worker is not None else {}

    def reached(self) -> frozenset[tuple[str, str]] | None:
        """The (project, site) pairs the worker reached; None without a worker in this process."""
        return self.worker.sites_reached() if self.worker_running and self.worker is not None else None

    def woke(self) -> None:
        """After an action: make the in-process worker look at its queues now."""
        if self.worker is not None and self.worker.wake is not None:
            self.worker.wake.set()


def web_dir() -> Path:
    return Path(str(resources.files("sitesync.web") / "static"))


def _status_of(exc: SitesyncError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError | GuardRefusedError):
        return 409
    if isinstance(exc, ForbiddenError):
        return 403
    if isinstance(exc, InvalidSettingError):
        return 422
    if isinstance(exc, DatabaseError):
        return 503
    if isinstance(exc, UserError):
        return 400
    if isinstance(exc, StorageError):
        return 502
    return 500


def error_response(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": one_line(detail), "error": error}, status_code=status, headers=headers)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",)) or "request"
        msg = str(err.get("msg", "invalid value"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        parts.append(f"{loc}: {msg}")
    more = len(exc.errors()) - 3
    if more > 0:
        parts.append(f"and {more} more")
    return "invalid request: " + "; ".join(parts) + "; see /api/v1/docs"


class GuardMiddleware(BaseHTTPMiddleware):
    def __init__(self, app: Any, token: str | None, allowed_hosts: Sequence[str] | None) -> None:
        super().__init__(app)
        self.token = token
        self.allowed_hosts = {h.lower() for h in allowed_hosts} if allowed_hosts else None

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        host = (request.headers.get("host") or "").lower()
        if self.allowed_hosts is not None and _hostname(host) not in self.allowed_hosts:
            return error_response(
                403, "Forbidden", f"host {host!r} is not served here; open the dashboard through a loopback address"
            )
        if path.startswith(API_PREFIX) and path not in PUBLIC_API_PATHS and not self._authenticated(request):
            return error_response(
                401,
                "Unauthorized",
                "missing or wrong token: send the header Authorization: Bearer <token>",
                {"WWW-Authenticate": "Bearer"},
            )
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            origin = request.headers.get("origin")
            if origin is not None and urlsplit(origin).netloc.lower() != host:
                return error_response(403, "Forbidden", "requests from another origin are refused (no CORS)")
            if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
                return error_response(403, "Forbidden", "requests from another site are refused (no CORS)")
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type != "application/json":
                return error_response(
                    415, "UnsupportedMediaType", "send a JSON body with Content-Type: application/json ({} is fine)"
                )
        return await call_next(request)

    def _authenticated(self, request: Request) -> bool:
        if self.token is None:
            return True
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token_matches(value.strip(), self.token):
            return True
        cookie = request.cookies.get(SESSION_COOKIE)
        return cookie is not None and session_valid(cookie, self.token)


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]")[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def create_app(
    client: Client,
    *,
    token: str | None = None,
    worker: Worker | None = None,
    allowed_hosts: Sequence[str] | None = None,
) -> FastAPI:
    """The API and dashboard around ``client``. ``worker`` runs in a thread while the app runs."""
    from sitesync.api.routes import (
        actions,
        auth,
        events,
        health,
        metrics,
        operations,
        overview,
        projects,
        representations,
        settings,
        sites,
        workfiles,
    )

    ctx = ApiContext(client=client, worker=worker, token=token)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        maintenance = threading.Thread(target=_maintain, args=(ctx,), name="sitesync-api-maintenance", daemon=True)
        maintenance.start()
        if ctx.worker is not None:
            ctx.worker_thread = threading.Thread(target=_run_worker, args=(ctx.worker,), name="sitesync-worker")
            ctx.worker_thread.start()
        try:
            yield
        finally:
            ctx.stop.set()
            if ctx.worker is not None:
                ctx.worker.stop()
                if ctx.worker_thread is not None:
                    ctx.worker_thread.join(ctx.worker.options.stop_grace_seconds + 20)
                if ctx.worker.wake is not None:
                    ctx.worker.wake.close()
            maintenance.join(5)

    app = FastAPI(
        title="sitesync",
        version=__version__,
        description=(
            "Sync Queue REST API: projects, sites, settings, representations with their state on each "
            "site, actions (download, upload, re-sync, remove, priority, pause/resume), events and live "
            "progress. With a token, send `Authorization: Bearer <token>`; changes need "
            "`Content-Type: application/json`."
        ),
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served from packaged assets below (api/docs.py), never from a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.add_middleware(GuardMiddleware, token=token, allowed_hosts=allowed_hosts)

    @app.exception_handler(SitesyncError)
    async def _sitesync_error(_request: Request, exc: SitesyncError) -> JSONResponse:
        status = _status_of(exc)
        if status >= 500:
            log.warning("request failed: %s", exc)
        return error_response(status, type(exc).__name__, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "InvalidInputError", _describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = str(exc.detail)
        if exc.status_code == 400 and "parsing the body" in detail:
            detail = "the body is not valid JSON: send a JSON object ({} is fine)"
        elif exc.status_code == 404:
            detail = "no such API route; see /api/v1/docs"
        elif exc.status_code == 405:
            detail = "this route does not take that method; see /api/v1/docs"
        name = {400: "InvalidInputError", 404: "NotFoundError", 405: "MethodNotAllowed"}.get(
            exc.status_code, "HTTPError"
        )
        return error_response(exc.status_code, name, detail, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error: %s", exc)
        return error_response(500, "InternalError", "unexpected server error; the server log has the details")

    for module in (
        health,
        auth,
        metrics,
        projects,
        overview,
        sites,
        settings,
        representations,
        actions,
        events,
        operations,
        workfiles,
    ):
        app.include_router(module.router, prefix=API_PREFIX)

    serve_docs(app, f"{API_PREFIX}/openapi.json", f"{API_PREFIX}/docs")
    static = web_dir()
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(static / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get(LOGIN_PATH, include_in_schema=False)
    def login(request: Request, code: str = "") -> Response:
        """A one-time login link: the session cookie, then the dashboard (or why not)."""
        headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        if ctx.token is None:
            return RedirectResponse("/", status_code=303, headers=headers)
        if not ctx.login_codes.redeem(code):
            return RedirectResponse("/#login-refused", status_code=303, headers=headers)
        response = RedirectResponse("/", status_code=303, headers=headers)
        auth.set_session_cookie(response, request, ctx.token)
        return response

    return app


def _run_worker(worker: Worker) -> None:
    try:
        worker.run()
    except Exception:  # the worker loop never raises; this is the last line of defence
        log.exception("the worker stopped unexpectedly")


def _maintain(ctx: ApiContext) -> None:
    """Keep the database's planner statistics fresh while the server runs."""
    while True:
        try:
            ctx.client.store.optimize()
        except Exception as exc:  # statistics are an optimisation: never fatal
            log.debug("could not refresh planner statistics: %s", exc)
        if ctx.stop.wait(MAINTENANCE_SECONDS):
            return


__all__ = ["API_PREFIX", "ApiContext", "create_app"]
