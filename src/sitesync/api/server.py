"""``sitesync serve``: the worker, the REST API and the dashboard in one process (uvicorn).

A token is required by default, on loopback too: ``--token``/``SITESYNC_TOKEN``, else this
machine's token file (generated on the first start, see ``api/auth.py``). The first line printed
holds a one-time login link for the dashboard. ``no_token`` serves without one, on loopback only
(a single-user machine: every local user and process could use the API). On a loopback address
only loopback host names are answered, so a web page elsewhere cannot reach the server through DNS
rebinding. While it runs, ``serve.json`` in the data folder says where (``sitesync dashboard``
reads it).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import socket
import sys
from pathlib import Path

from sitesync.api.auth import LOGIN_CODE_SECONDS, LOGIN_PATH, ensure_token
from sitesync.client import Client
from sitesync.errors import InvalidInputError
from sitesync.private import write_private_file

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")

log = logging.getLogger("sitesync.api")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_port(port: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidInputError(f"invalid --port {port!r}: use a port from 1 to 65535 (0 picks a free one)")
    return port


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 picks a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), check_port(port)))
    except (OSError, OverflowError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        sock.close()
        raise InvalidInputError(
            f"cannot listen on {host}:{port}: {reason}; choose another --port (0 picks a free one)"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown (exit status -15); a
        clean stop of `sitesync serve` exits 0, like `sitesync worker`."""

        def handle_exit(self, sig: int, frame: object) -> None:
            super().handle_exit(sig, frame)  # type: ignore[arg-type]
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list):
                captured.clear()

    return Server


def serve(
    client: Client,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    no_token: bool = False,
    run_worker: bool = True,
    log_level: str = "info",
) -> None:
    """Run until SIGINT/SIGTERM; the worker is stopped cleanly on the way out."""
    import uvicorn

    from sitesync.api.app import create_app

    server_class = _server_class()
    check_port(port)
    token = resolve_token(client, host, token, no_token)
    client.store.ping()  # a clear error now rather than on the first request
    sock = bind(host, port)
    actual_port = sock.getsockname()[1]
    worker = client.worker() if run_worker else None
    allowed = sorted({*LOOPBACK_NAMES, host.strip("[]")}) if is_loopback(host) else None
    app = create_app(client, token=token, worker=worker, allowed_hosts=allowed)
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=log_level == "debug",
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    server = server_class(config)
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    base = f"http://{shown}:{actual_port}"
    if token is None:
        dashboard = f"{base}/"
        access = "no token: every local user can use it"
    else:
        dashboard = f"{base}{LOGIN_PATH}?code={app.state.ctx.login_codes.issue()}"
        access = f"token required; the link works once, for {LOGIN_CODE_SECONDS // 60} minutes"
    sys.stdout.write(
        f"sitesync serve: dashboard {dashboard}  API {base}/api/v1"
        f"  ({'worker running' if worker else 'no worker'}; {access})\n"
    )
    sys.stdout.flush()
    runtime = _write_runtime_file(client, f"{base}/")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        _remove_runtime_file(runtime)
        if worker is not None and worker.wake is not None:
            worker.wake.close()  # idempotent; the app's shutdown closed it already if it started


def resolve_token(client: Client, host: str, token: str | None, no_token: bool) -> str | None:
    """The token the server requires: given, or this machine's token file; ``None`` with
    ``no_token`` (loopback only, and loudly)."""
    token = token or None
    if no_token:
        if token is not None:
            raise InvalidInputError("--no-token and --token (or SITESYNC_TOKEN) contradict each other; choose one")
        if not is_loopback(host):
            raise InvalidInputError(
                f"refusing to serve on {host} without a token: --no-token is for loopback on a single-user machine"
            )
        log.warning(
            "serving WITHOUT A TOKEN (--no-token): every user and process of this machine can read and change "
            "everything through the API; use it only on a single-user machine"
        )
        return None
    return token or ensure_token(client.paths)


def runtime_file(client: Client) -> Path:
    return client.paths.data_dir / "serve.json"


def _write_runtime_file(client: Client, url: str) -> Path | None:
    path = runtime_file(client)
    try:
        write_private_file(path, json.dumps({"url": url, "pid": os.getpid()}) + "\n", what="server runtime file")
    except Exception as exc:  # only a convenience for `sitesync dashboard`: never fatal
        log.warning("could not write %s: %s", path, exc)
        return None
    return path


def _remove_runtime_file(path: Path | None) -> None:
    if path is None:
        return
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()


__all__ = ["LOOPBACK_NAMES", "check_port", "is_loopback", "resolve_token", "runtime_file", "serve"]
