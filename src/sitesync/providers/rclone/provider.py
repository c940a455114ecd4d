"""``rclone``: any storage rclone reaches (S3 and its clones, SFTP, WebDAV, OneDrive, B2, Box...).

A site is either a remote of an rclone config file, by name, or an inline remote (backend type plus
options, secrets from sitesync's secret syntax). Paths are '/'-separated inside the remote; the
site's root locations are the remote paths the roots live at (``bucket/projects``, ``/srv/show``).

Writes go to a hidden temporary name next to the target (``.sitesync-<random>.part``), are checked
by ``commit_check`` and then moved over the final name (a rename where the backend has one, a
server-side copy on object stores): nothing is visible under the final name before it is verified.
Small files pass through the site's long-running ``rclone rcd``; bigger ones are streamed through
``rclone rcat`` so they are never spooled to local disk and progress counts real bytes sent.
rclone itself checks the uploaded object's size, and its hash where the backend has one.

When a call fails, the site is probed (a listing of its root): if that fails too, the whole site
is unavailable (bad credentials, host down) and no file attempt is burnt.
"""

from __future__ import annotations

import builtins
import contextlib
import http.client
import io
import json
import logging
import secrets
import subprocess
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, BinaryIO

from sitesync.errors import (
    PermanentStorageError,
    SiteUnavailableError,
    StorageError,
    TransientStorageError,
)
from sitesync.providers._cloud import remote_parts
from sitesync.providers.base import CommitCheck, Entry, Provider, ReadableStream
from sitesync.providers.rclone.config import RcloneConfig
from sitesync.providers.rclone.daemon import Daemon, DaemonGone, RcError

log = logging.getLogger("sitesync.providers.rclone")
TEMP_PREFIX = ".sitesync-"
TEMP_SUFFIX = ".part"
CHUNK = 1024 * 1024


def _is_temp(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def _mtime(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _join(fs: str, rel: str) -> str:
    return fs + rel if fs.endswith((":", "/")) else f"{fs}/{rel}"


class RcloneProvider(Provider):
    name = "rclone"
    Config = RcloneConfig
    description = "any rclone remote: S3, SFTP, WebDAV, OneDrive, B2, Box, ..."
    config: RcloneConfig

    def __init__(self, site: str, config: RcloneConfig, roots: Mapping[str, str] | None = None) -> None:
        super().__init__(site, config, roots)
        self.daemon = Daemon(site, config)

    # ------------------------------------------------------------------ paths

    def _fs(self, base: str) -> str:
        return f"{self.config.remote_name}:{base}"

    def _split(self, path: str, *, folder: bool = False) -> tuple[str, str]:
        """(rclone fs string, path relative to it): the fs is the longest root location holding ``path``.
        With ``folder``, ``path`` may be a root location itself (relative part empty)."""
        for base in sorted(self.roots.values(), key=len, reverse=True):
            root = base if base == "/" else base.rstrip("/")
            prefix = root if root.endswith("/") else root + "/"
            if folder and path.rstrip("/") == root.rstrip("/"):
                return self._fs(root), ""
            if root and path.startswith(prefix) and len(path) > len(prefix):
                return self._fs(root), "/".join(remote_parts(path[len(prefix) :], site=self.site))
        rel = "/".join(remote_parts(path, site=self.site))
        return self._fs("/" if path.startswith("/") else ""), rel

    def _root_fs(self) -> list[str]:
        bases = sorted({b if b == "/" else b.rstrip("/") for b in self.roots.values()})
        return [self._fs(b) for b in bases] or [self._fs("")]

    # ------------------------------------------------------------------ errors

    def _rc(self, command: str, params: dict[str, Any], what: str) -> dict[str, Any]:
        try:
            return self.daemon.rc(command, params)
        except RcError:
            raise
        except DaemonGone as exc:
            raise self._unavailable(str(exc)) from None

    def _unavailable(self, reason: str) -> SiteUnavailableError:
        return SiteUnavailableError(f"site {self.site}: cannot use the rclone remote: {reason}", site=self.site)

    def _probe(self) -> None:
        """Raise ``SiteUnavailableError`` if the remote cannot be listed at all."""
        for fs in self._root_fs():
            try:
                self._rc("operations/list", {"fs": fs, "remote": "", "opt": {"recurse": False}}, "probe")
            except RcError as exc:
                if exc.status != 404:  # a root folder that does not exist yet is created on write
                    raise self._unavailable(_one_line(str(exc))) from None

    def _failed(self, exc: BaseException, what: str) -> StorageError:
        """An error of one operation: the site's fault (unavailable) or this file's (transient)."""
        if isinstance(exc, StorageError):
            return exc
        self._probe()
        return TransientStorageError(f"site {self.site}: {what}: {_one_line(str(exc))}", site=self.site)

    # ------------------------------------------------------------------ the contract

    def check(self) -> None:
        self.daemon.ensure()
        self._probe()

    def stat(self, path: str) -> Entry | None:
        fs, rel = self._split(path)
        try:
            item = self._rc("operations/stat", {"fs": fs, "remote": rel}, f"stat {path}").get("item")
        except RcError as exc:
            if exc.status == 404:
                return None
            raise self._failed(exc, f"stat {path}") from None
        if not item or item.get("IsDir"):
            return None
        return Entry(path=path, size=int(item.get("Size", 0)), mtime=_mtime(item.get("ModTime")))

    def open_read(self, path: str) -> BinaryIO:
        fs, rel = self._split(path)
        url = "/" + urllib.parse.quote(f"[{fs}]", safe=":/") + "/" + urllib.parse.quote(rel, safe="/")
        try:
            conn, resp = self.daemon.open_get(url)
        except DaemonGone as exc:
            raise self._unavailable(str(exc)) from None
        except OSError as exc:
            raise self._failed(exc, f"read {path}") from None
        if resp.status == 200:
            return _Download(conn, resp)  # type: ignore[return-value]
        body = resp.read().decode("utf-8", "replace")
        conn.close()
        if resp.status == 404:
            raise PermanentStorageError(f"site {self.site}: read {path}: no such file", site=self.site)
        try:
            message = json.loads(body).get("error") or body
        except ValueError:
            message = body
        raise self._failed(RcError(resp.status, str(message)), f"read {path}")

    def write(self, path: str, stream: ReadableStream, size: int, commit_check: CommitCheck) -> Entry:
        fs, rel = self._split(path)
        parts = rel.split("/")
        folder = "/".join(parts[:-1])
        temp_name = f"{TEMP_PREFIX}{secrets.token_hex(6)}{TEMP_SUFFIX}"
        temp = f"{folder}/{temp_name}" if folder else temp_name
        committed = False
        try:
            if size <= self.config.stream_threshold:
                sent = self._upload_small(fs, folder, temp_name, stream, size, path)
            else:
                sent = self._upload_streamed(fs, temp, stream, size, path)
            commit_check()
            if sent != size:
                raise PermanentStorageError(
                    f"site {self.site}: write {path}: the source gave {sent} bytes, expected {size}", site=self.site
                )
            try:
                self._rc(
                    "operations/movefile",
                    {"srcFs": fs, "srcRemote": temp, "dstFs": fs, "dstRemote": rel},
                    f"write {path}",
                )
            except RcError as exc:
                raise self._failed(exc, f"write {path}: move into place") from None
            committed = True
        finally:
            if not committed:
                try:
                    self.daemon.rc("operations/deletefile", {"fs": fs, "remote": temp})
                except RcError as exc:
                    if exc.status != 404:  # temporary names are never listed; the sweep removes it later
                        log.info("site %s: temporary file %s left for the sweep: %s", self.site, temp, exc)
                except Exception as exc:
                    log.info("site %s: temporary file %s left for the sweep: %s", self.site, temp, exc)
        # rclone itself compared size (and hash, where the backend has one) of what it stored
        return Entry(path=path, size=size, mtime=time.time())

    def _upload_small(self, fs: str, folder: str, name: str, stream: ReadableStream, size: int, path: str) -> int:
        data = bytearray()
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            data += chunk
            if len(data) > size:  # longer than announced: commit_check will refuse it
                break
        boundary = secrets.token_hex(16)
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file0"; filename="{name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + bytes(data[:size])
            + f"\r\n--{boundary}--\r\n".encode()
        )
        query = urllib.parse.urlencode({"fs": fs, "remote": folder})
        try:
            resp = self.daemon.request(
                "POST",
                f"/operations/uploadfile?{query}",
                body,
                {"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
            answer = resp.read()
        except DaemonGone as exc:
            raise self._unavailable(str(exc)) from None
        if resp.status != 200:
            try:
                message = json.loads(answer).get("error")
            except ValueError:
                message = answer.decode("utf-8", "replace")
            raise self._failed(RcError(resp.status, str(message)), f"write {path}")
        return len(data)

    def _upload_streamed(self, fs: str, temp: str, stream: ReadableStream, size: int, path: str) -> int:
        env = self.daemon.environment()
        args = [self.daemon.executable, "rcat", "--size", str(size), *self.daemon.common_args(), _join(fs, temp)]
        proc = subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        errors: deque[str] = deque(maxlen=5)
        drain = threading.Thread(target=lambda: errors.extend(_lines(proc.stderr)), daemon=True)
        drain.start()
        sent = 0
        assert proc.stdin is not None
        try:
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                sent += len(chunk)
                if sent > size:  # longer than announced: stop, commit_check will refuse it
                    break
                proc.stdin.write(chunk)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # rclone stopped reading: its exit status and message tell why
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        code = proc.wait()
        drain.join(timeout=10)
        if code != 0:
            message = next((e for e in reversed(errors) if "ERROR" in e or "Failed" in e), errors[-1] if errors else "")
            raise self._failed(RuntimeError(f"rclone rcat exited with {code}: {message}"), f"write {path}")
        return sent

    def delete(self, path: str) -> None:
        fs, rel = self._split(path)
        try:
            self._rc("operations/deletefile", {"fs": fs, "remote": rel}, f"delete {path}")
        except RcError as exc:
            if exc.status != 404:
                raise self._failed(exc, f"delete {path}") from None

    def list(self, prefix: str) -> Iterator[Entry]:
        fs, rel = self._split(prefix, folder=True)
        items = self._files_below(fs, rel, f"list {prefix}")
        head = prefix.rstrip("/")
        strip = rel + "/" if rel else ""
        for item in sorted(items, key=lambda i: str(i.get("Path", ""))):
            if item.get("IsDir") or _is_temp(item.get("Name", "")):
                continue
            sub = item["Path"][len(strip) :] if item["Path"].startswith(strip) else item["Path"]
            yield Entry(path=f"{head}/{sub}", size=int(item.get("Size", 0)), mtime=_mtime(item.get("ModTime")))

    def _files_below(self, fs: str, rel: str, what: str) -> builtins.list[dict[str, Any]]:
        """Every file below ``rel`` (temporary ones included), as rclone's operations/list gives them."""
        try:
            return self._rc(
                "operations/list", {"fs": fs, "remote": rel, "opt": {"recurse": True, "filesOnly": True}}, "list"
            ).get("list", [])
        except RcError as exc:
            if exc.status == 404:
                return []
            raise self._failed(exc, what) from None

    def sweep_leftovers(self, prefix: str, older_than: float | None = None) -> builtins.list[str]:
        age = self.config.leftover_age if older_than is None else older_than
        fs, rel = self._split(prefix, folder=True)
        items = self._files_below(fs, rel, f"sweep {prefix}")
        limit = time.time() - age
        removed = []
        for item in items:
            mtime = _mtime(item.get("ModTime"))
            if not _is_temp(item.get("Name", "")) or (mtime is not None and mtime > limit):
                continue
            try:
                self._rc("operations/deletefile", {"fs": fs, "remote": item["Path"]}, f"sweep {prefix}")
            except RcError as exc:
                if exc.status != 404:
                    raise self._failed(exc, f"sweep {prefix}") from None
            removed.append(_join(fs, item["Path"]))
        if removed:
            log.info("site %s: removed %d leftover temporary files below %s", self.site, len(removed), prefix)
        return removed

    def close(self) -> None:
        self.daemon.close()


class _Download(io.RawIOBase):
    """A download from rcd's object server; closing it closes its connection."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._resp = resp

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._resp.readinto(buffer)

    def read(self, size: int = -1) -> bytes:
        return self._resp.read(None if size is None or size < 0 else size)

    def close(self) -> None:
        if not self.closed:
            self._resp.close()
            self._conn.close()
        super().close()


def _lines(pipe: Any) -> Iterator[str]:
    for raw in pipe:
        yield raw.decode("utf-8", "replace").rstrip()


def _one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return (lines[0] if lines else "unknown error")[:400]
