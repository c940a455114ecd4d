"""``sitesync serve``: the worker, the REST API and the dashboard in one process (uvicorn).

Loopback binds need no token. Any other address needs one (``--token`` or ``SITESYNC_TOKEN``),
otherwise the server refuses to start. Without a token only loopback host names are answered,
so a web page elsewhere cannot reach the server through DNS rebinding.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys

from sitesync.client import Client
from sitesync.errors import InvalidInputError

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")

log = logging.getLogger("sitesync.api")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 picks a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise InvalidInputError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port (0 picks a free one)"
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
    run_worker: bool = True,
    log_level: str = "info",
) -> None:
    """Run until SIGINT/SIGTERM; the worker is stopped cleanly on the way out."""
    import uvicorn

    from sitesync.api.app import create_app

    server_class = _server_class()
    token = token or None
    if not is_loopback(host) and token is None:
        raise InvalidInputError(
            f"refusing to serve on {host} without a token: pass --token or set SITESYNC_TOKEN "
            "(or bind to 127.0.0.1, which needs none)"
        )
    client.store.ping()  # a clear error now rather than on the first request
    sock = bind(host, port)
    actual_port = sock.getsockname()[1]
    worker = client.worker() if run_worker else None
    allowed = None if token else sorted({*LOOPBACK_NAMES, host.strip("[]")})
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
    sys.stdout.write(
        f"sitesync serve: dashboard http://{shown}:{actual_port}/  API http://{shown}:{actual_port}/api/v1"
        f"  ({'worker running' if worker else 'no worker'}; {'token required' if token else 'no token'})\n"
    )
    sys.stdout.flush()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        if worker is not None and worker.wake is not None:
            worker.wake.close()  # idempotent; the app's shutdown closed it already if it started


__all__ = ["LOOPBACK_NAMES", "is_loopback", "serve"]
