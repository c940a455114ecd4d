"""``s3``: Amazon S3 and S3-compatible object storage (MinIO, Ceph, Wasabi, ``rclone serve s3``...).

Paths handed to the provider (a site root's location joined with a catalog path) become object keys
below the ``prefix`` option: ``prefix/work/show/sh010/a.exr``. S3 has no folders, so nothing
needs creating or pruning.

Atomicity comes from S3 itself: an object appears only when a PUT or a CompleteMultipartUpload
succeeds. Files below ``multipart_threshold`` are read into memory, checked by ``commit_check`` and
PUT; larger files are sent as a multipart upload (``max_concurrency`` parts in flight) that is
completed only after ``commit_check`` passed and aborted on any failure. The content hash is the
transfer layer's own (xxh3 of the streamed bytes); an ETag is never taken for a content hash.
Downloads of large objects fetch ``multipart_part_size`` ranges ahead in parallel.

Errors: a missing bucket, refused credentials or an unreachable endpoint make the whole site
unavailable; a refused or missing object fails that file only.

Leftovers: an unfinished multipart upload is invisible but stored (and billed) until aborted. One
whose abort failed (the endpoint went away mid-upload) is aborted after the next successful write;
the first write below a folder also aborts other unfinished uploads there started more than
``leftover_age`` ago, and ``sweep_leftovers`` (fsck, the worker's sweep) does so below any prefix.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import io
import logging
import posixpath
import re
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any, BinaryIO, Literal

import boto3
import botocore.exceptions as bex
from botocore.config import Config as BotoConfig
from pydantic import Field, SecretStr, model_validator

from sitesync.errors import PermanentStorageError, SiteUnavailableError, StorageError, TransientStorageError
from sitesync.providers.base import (
    LEFTOVER_AGE_SECONDS,
    CommitCheck,
    Entry,
    FoldersSeen,
    LocalOnly,
    Provider,
    ProviderConfig,
    ReadableStream,
)
from sitesync.providers.streams import read_upto
from sitesync.secretrefs import reveal

log = logging.getLogger("sitesync.providers.s3")
MiB = 1024 * 1024
MIN_PART = 5 * MiB  # S3's smallest part (except the last)
MAX_PARTS = 10_000

# Error codes that mean "these credentials are no good here": the whole site is unusable.
CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "InvalidClientTokenId",
        "AuthorizationHeaderMalformed",
        "AccountProblem",
    }
)
MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchUpload"})
DENIED_CODES = frozenset({"AccessDenied", "403", "AllAccessDisabled", "Forbidden"})


_SESSIONS: dict[str | None, Any] = {}
_SESSIONS_LOCK = threading.Lock()


def _session(profile: str | None) -> Any:
    """One boto3 session per AWS profile for the whole process: a session caches the service
    models it loads, so a new provider instance (each worker run) makes its client in
    milliseconds instead of re-reading botocore's JSON files."""
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(profile)
        if session is None:
            session = _SESSIONS[profile] = boto3.session.Session(profile_name=profile)
        return session


class S3Config(ProviderConfig):
    bucket: str = Field(min_length=3, max_length=255)
    """Bucket name. It must exist: sitesync never creates buckets."""
    prefix: str = ""
    """Key prefix every root lives below, e.g. ``studio/projects``."""
    endpoint_url: str | None = None
    """Endpoint of an S3-compatible service, e.g. ``https://minio.example.com:9000``. Empty: AWS."""
    region: str | None = None
    """Region, e.g. ``eu-west-1``. Empty: the profile's or environment's region."""
    profile: Annotated[str | None, LocalOnly("names a profile of this machine's AWS credentials files")] = None
    """A named profile of the AWS config files (``~/.aws/credentials``)."""
    access_key_id: SecretStr | None = None
    """Access key id (literal, ``env:NAME`` or ``file:PATH``). Empty: profile or default chain."""
    secret_access_key: SecretStr | None = None
    """Secret access key (literal, ``env:NAME`` or ``file:PATH``)."""
    session_token: SecretStr | None = None
    """Session token of temporary credentials (optional)."""
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    """``path`` for most self-hosted servers, ``virtual`` for bucket-as-hostname, ``auto`` for AWS."""
    storage_class: str | None = None
    """Storage class of new objects, e.g. ``STANDARD_IA`` or ``INTELLIGENT_TIERING``."""
    multipart_threshold: int = Field(default=16 * MiB, ge=MIN_PART)
    """Files of this size or more are sent as multipart uploads (bytes)."""
    multipart_part_size: int = Field(default=8 * MiB, ge=MIN_PART, le=5 * 1024 * MiB)
    """Size of one part of a multipart upload, and of one ranged read of a download (bytes)."""
    max_concurrency: int = Field(default=4, ge=1, le=64)
    """Parts of one file uploaded or downloaded at the same time."""
    max_attempts: int = Field(default=5, ge=1, le=20)
    """Attempts of one request before it counts as failed (botocore's standard retry mode)."""
    connect_timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for a connection to the endpoint."""
    read_timeout: float = Field(default=60.0, gt=0)
    """Seconds to wait for data on an open connection before the request counts as failed."""
    verify_tls: bool = True
    """Verify the endpoint's TLS certificate (leave on; use ``ca_bundle`` for a private CA)."""
    ca_bundle: Annotated[str | None, LocalOnly("names a file the service reads")] = None
    """A PEM file of certificate authorities to trust for the endpoint."""
    leftover_age: float = Field(default=LEFTOVER_AGE_SECONDS, ge=0)
    """Unfinished multipart uploads started more than this many seconds ago are leftovers of
    interrupted writes: aborted by the next write to their folder, by ``fsck`` and the worker's sweep."""

    @model_validator(mode="after")
    def _credentials_pair(self) -> S3Config:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("set both access_key_id and secret_access_key, or neither")
        if self.profile and self.access_key_id is not None:
            raise ValueError("set either profile or access_key_id/secret_access_key, not both")
        return self


class S3Provider(Provider):
    name = "s3"
    Config = S3Config
    description = "Amazon S3 or S3-compatible object storage"
    config: S3Config
    conformance_skips: dict[str, str] = {}

    def __init__(self, site: str, config: S3Config, roots: dict[str, str] | None = None) -> None:
        super().__init__(site, config, roots)
        prefix = config.prefix.strip("/")
        self._prefix = f"{prefix}/" if prefix else ""
        self._lock = threading.Lock()
        self._client: Any = None
        self._orphans: set[tuple[str, str]] = set()  # (key, upload id) whose abort failed
        self._active: set[str] = set()  # upload ids of this provider's multipart uploads under way
        self._swept = FoldersSeen()  # folders looked at for others' leftovers

    # ------------------------------------------------------------------ plumbing

    @property
    def client(self) -> Any:
        client = self._client
        if client is not None:  # every request asks: no lock (its wait showed in download profiles)
            return client
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        cfg = self.config
        try:
            session = _session(cfg.profile or None)
        except bex.ProfileNotFound:
            raise SiteUnavailableError(
                f"site {self.site}: AWS profile {cfg.profile!r} is not defined in the AWS config files", site=self.site
            ) from None
        verify: bool | str | None = cfg.ca_bundle or (None if cfg.verify_tls else False)
        boto_config = BotoConfig(
            s3={"addressing_style": cfg.addressing_style},
            retries={"max_attempts": cfg.max_attempts, "mode": "standard"},
            connect_timeout=cfg.connect_timeout,
            read_timeout=cfg.read_timeout,
            max_pool_connections=64,
            tcp_keepalive=True,
            # content is proven by the transfer layer's own hash; some S3-compatible servers send a
            # whole-object checksum with ranged reads, which botocore would then wrongly refuse
            response_checksum_validation="when_required",
        )
        with _SESSIONS_LOCK:  # boto3 sessions are not thread-safe; the clients they make are
            return session.client(
                "s3",
                endpoint_url=cfg.endpoint_url or None,
                verify=verify,
                config=boto_config,
                region_name=cfg.region or None,
                aws_access_key_id=reveal(cfg.access_key_id, site=self.site, key="access_key_id"),
                aws_secret_access_key=reveal(cfg.secret_access_key, site=self.site, key="secret_access_key"),
                aws_session_token=reveal(cfg.session_token, site=self.site, key="session_token"),
            )

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def key(self, path: str) -> str:
        """The object key of a provider path."""
        return self._prefix + path.replace("\\", "/").lstrip("/")

    def _where(self) -> str:
        return f"bucket {self.config.bucket}" + (f" at {self.config.endpoint_url}" if self.config.endpoint_url else "")

    def _error(self, exc: Exception, what: str, *, checking: bool = False) -> StorageError:
        """One storage error with a clear message for anything boto3/botocore raised."""
        site = self.site
        if isinstance(exc, StorageError):
            return exc
        if isinstance(exc, bex.ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code == "NoSuchBucket":
                return SiteUnavailableError(
                    f"site {site}: {self._where()} does not exist; create it or fix the site's bucket option",
                    site=site,
                )
            if code in CREDENTIAL_CODES:
                return SiteUnavailableError(
                    f"site {site}: {self._where()} refused the credentials ({code}); check access_key_id and "
                    "secret_access_key (or the profile)",
                    site=site,
                )
            if code in DENIED_CODES or status == 403:
                if checking:
                    return SiteUnavailableError(
                        f"site {site}: access to {self._where()} denied; check the credentials and their permissions",
                        site=site,
                    )
                return PermanentStorageError(
                    f"site {site}: {what}: access denied; check the bucket policy or the credentials' permissions",
                    site=site,
                )
            if code == "PreconditionFailed" or status == 412:
                return TransientStorageError(f"site {site}: {what}: the object changed while it was read", site=site)
            if code in MISSING_CODES or status == 404:
                return PermanentStorageError(f"site {site}: {what}: no such object", site=site)
            reason = f"{code or status}: {err.get('Message') or 'no details'}"
            if status >= 500 or code in ("SlowDown", "RequestTimeout", "RequestTimeTooSkewed", "InternalError"):
                return TransientStorageError(f"site {site}: {what}: {reason}", site=site)
            return PermanentStorageError(f"site {site}: {what}: {reason}", site=site)
        if isinstance(exc, bex.NoCredentialsError | bex.PartialCredentialsError | bex.CredentialRetrievalError):
            return SiteUnavailableError(
                f"site {site}: no usable S3 credentials ({type(exc).__name__}); set access_key_id and "
                "secret_access_key, a profile, or the AWS environment variables",
                site=site,
            )
        if isinstance(exc, bex.SSLError):
            return SiteUnavailableError(
                f"site {site}: TLS verification of {self.config.endpoint_url or 'the S3 endpoint'} failed; "
                "set ca_bundle to the server's certificate authority",
                site=site,
            )
        if isinstance(exc, bex.EndpointConnectionError | bex.ConnectTimeoutError | bex.ProxyConnectionError):
            cause = re.search(r"\[Errno -?\d+\] ([^'\"]+)", str(exc.kwargs.get("error", "")))
            reason = cause.group(1).strip().rstrip(")") if cause else type(exc).__name__
            return SiteUnavailableError(
                f"site {site}: cannot reach the S3 endpoint {self.config.endpoint_url or '(AWS)'} ({reason})", site=site
            )
        if isinstance(exc, bex.BotoCoreError | OSError):
            return TransientStorageError(f"site {site}: {what}: {exc}", site=site)
        return TransientStorageError(f"site {site}: {what}: {type(exc).__name__}: {exc}", site=site)

    # ------------------------------------------------------------------ contract

    def check(self) -> None:
        try:
            self.client.list_objects_v2(Bucket=self.config.bucket, Prefix=self._prefix, MaxKeys=1)
        except Exception as exc:
            err = self._error(exc, "list", checking=True)
            if isinstance(err, SiteUnavailableError):
                raise err from None
            raise SiteUnavailableError(str(err), site=self.site) from None

    def stat(self, path: str) -> Entry | None:
        try:
            head = self.client.head_object(Bucket=self.config.bucket, Key=self.key(path))
        except bex.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in MISSING_CODES:
                return None
            raise self._error(exc, f"stat {path}") from None
        except Exception as exc:
            raise self._error(exc, f"stat {path}") from None
        modified = head.get("LastModified")
        return Entry(
            path=path,
            size=int(head["ContentLength"]),
            mtime=modified.timestamp() if modified else None,
            ref=head.get("VersionId"),
        )

    def open_read(self, path: str) -> BinaryIO:
        key = self.key(path)
        what = f"read {path}"
        part = self.config.multipart_part_size
        bucket = self.config.bucket
        try:
            if self.config.max_concurrency == 1:
                obj = self.client.get_object(Bucket=bucket, Key=key)
            else:
                try:  # the first range; its Content-Range tells the size
                    obj = self.client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{part - 1}")
                except bex.ClientError as exc:
                    if str(exc.response.get("Error", {}).get("Code", "")) != "InvalidRange":
                        raise
                    obj = self.client.get_object(Bucket=bucket, Key=key)  # an empty object
        except Exception as exc:
            raise self._error(exc, what) from None
        length = int(obj["ContentLength"])
        total = _total_size(obj.get("ContentRange"), length)
        if total <= length <= part:
            # the whole object in one response of at most a part: read it in one call (one pass of
            # the HTTP layers instead of one per consumer read), like a range of a large object
            return io.BytesIO(_read_whole(obj["Body"], length, self, what))
        if total <= length:
            return io.BufferedReader(_BodyReader(obj["Body"], self, what), buffer_size=MiB)
        # a large object: stream the first range from this response, fetch the next ones ahead in parallel
        return io.BufferedReader(_RangedReader(self, key, obj, length, total, what), buffer_size=MiB)

    def write(self, path: str, stream: ReadableStream, size: int, commit_check: CommitCheck) -> Entry:
        key = self.key(path)
        extra: dict[str, Any] = {}
        if self.config.storage_class:
            extra["StorageClass"] = self.config.storage_class
        if size < self.config.multipart_threshold:
            data = read_upto(stream, size + 1)  # one byte more: a longer source fails commit_check
            commit_check()
            try:
                put = self.client.put_object(Bucket=self.config.bucket, Key=key, Body=data, **extra)
            except Exception as exc:
                raise self._error(exc, f"write {path}") from None
            self._after_write(key)
            return Entry(path=path, size=len(data), mtime=time.time(), ref=put.get("VersionId"))
        entry = self._multipart(path, key, stream, size, commit_check, extra)
        self._after_write(key)
        return entry

    def _after_write(self, key: str) -> None:
        """A write succeeded, so the endpoint answers: abort the uploads whose abort failed, and
        look once below this folder for other unfinished uploads older than ``leftover_age``."""
        folder = posixpath.dirname(key)
        with self._lock:
            orphans, self._orphans = self._orphans, set()
            first = self._swept.first_visit(folder)
        removed = []
        for orphan_key, upload_id in sorted(orphans):
            if self._abort(orphan_key, upload_id):
                removed.append(f"{orphan_key} (unfinished upload)")
        if first:
            with contextlib.suppress(StorageError):
                removed += self._sweep(folder + "/" if folder else "", self.config.leftover_age)
        if removed:
            log.info(
                "site %s: aborted %d unfinished uploads of interrupted writes: %s", self.site, len(removed), removed
            )

    def _abort(self, key: str, upload_id: str) -> bool:
        """Abort one multipart upload; False (and remembered for later) if the endpoint failed."""
        try:
            self.client.abort_multipart_upload(Bucket=self.config.bucket, Key=key, UploadId=upload_id)
        except bex.ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in MISSING_CODES:
                return True
            log.warning("site %s: could not abort the unfinished upload of %s: %s", self.site, key, exc)
            return False
        except Exception:
            with self._lock:
                self._orphans.add((key, upload_id))
            return False
        return True

    def sweep_leftovers(self, prefix: str, older_than: float | None = None) -> list[str]:
        folder = self.key(prefix).rstrip("/")
        removed = self._sweep(
            folder + "/" if folder else "", self.config.leftover_age if older_than is None else older_than
        )
        if removed:
            log.info("site %s: aborted %d unfinished uploads below %s", self.site, len(removed), prefix)
        return removed

    def _sweep(self, key_prefix: str, older_than: float) -> list[str]:
        """Abort the unfinished multipart uploads below ``key_prefix`` started ``older_than`` ago
        (by the endpoint's clock against ours: the default age of hours absorbs any skew)."""
        limit = time.time() - older_than
        removed: list[str] = []
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.config.bucket, Prefix=key_prefix
            )
            for page in pages:
                for upload in page.get("Uploads", []) or []:
                    started = upload.get("Initiated")
                    if (started is not None and started.timestamp() > limit) or upload["UploadId"] in self._active:
                        continue
                    if self._abort(upload["Key"], upload["UploadId"]):
                        removed.append(f"{upload['Key']} (unfinished upload)")
        except Exception as exc:
            raise self._error(exc, f"list unfinished uploads below {key_prefix or '/'}") from None
        return removed

    def _part_size(self, size: int) -> int:
        part = self.config.multipart_part_size
        needed = -(-size // (MAX_PARTS - 100))  # room for a source slightly larger than announced
        if needed > part:
            part = -(-needed // MiB) * MiB
        return part

    def _multipart(
        self, path: str, key: str, stream: ReadableStream, size: int, commit_check: CommitCheck, extra: dict[str, Any]
    ) -> Entry:
        client, bucket = self.client, self.config.bucket
        what = f"write {path}"
        try:
            upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
        except Exception as exc:
            raise self._error(exc, what) from None
        with self._lock:
            self._active.add(upload_id)
        try:
            return self._upload_parts(path, key, upload_id, stream, size, commit_check)
        finally:
            with self._lock:
                self._active.discard(upload_id)

    def _upload_parts(
        self, path: str, key: str, upload_id: str, stream: ReadableStream, size: int, commit_check: CommitCheck
    ) -> Entry:
        client, bucket = self.client, self.config.bucket
        what = f"write {path}"
        part_size = self._part_size(size)
        etags: dict[int, str] = {}
        total = 0
        caller = False  # True while the caller's code runs (stream, commit_check): its errors pass unchanged

        def send(number: int, data: bytes) -> tuple[int, str]:
            resp = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data)
            return number, resp["ETag"]

        try:
            limit = self.config.max_concurrency
            with cf.ThreadPoolExecutor(limit, thread_name_prefix=f"s3-{self.site}-part") as pool:
                pending: set[cf.Future[tuple[int, str]]] = set()
                try:
                    number = 0
                    while True:
                        caller = True
                        data = read_upto(stream, part_size)
                        caller = False
                        if not data and number:
                            break
                        number += 1
                        if number > MAX_PARTS:
                            raise PermanentStorageError(
                                f"site {self.site}: {what}: the source is far larger than announced", site=self.site
                            )
                        total += len(data)
                        pending.add(pool.submit(send, number, data))
                        while len(pending) >= limit:  # bounded memory: at most `limit` parts in flight
                            done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                            etags.update(f.result() for f in done)
                        if len(data) < part_size:
                            break
                    for fut in cf.as_completed(pending):
                        etags.update([fut.result()])
                except BaseException:
                    for fut in pending:
                        fut.cancel()
                    raise
            caller = True
            commit_check()
            caller = False
            parts = [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]
            done_resp = client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException as exc:
            self._abort(key, upload_id)
            if caller or not isinstance(exc, Exception) or isinstance(exc, StorageError):
                raise
            raise self._error(exc, what) from None
        return Entry(path=path, size=total, mtime=time.time(), ref=done_resp.get("VersionId"))

    def delete(self, path: str) -> None:
        try:
            self.client.delete_object(Bucket=self.config.bucket, Key=self.key(path))
        except bex.ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in MISSING_CODES:
                return
            raise self._error(exc, f"delete {path}") from None
        except Exception as exc:
            raise self._error(exc, f"delete {path}") from None

    def list(self, prefix: str) -> Iterator[Entry]:
        folder = prefix.replace("\\", "/").rstrip("/")
        key_prefix = self.key(folder).rstrip("/") + "/"
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.config.bucket, Prefix=key_prefix):
                for obj in page.get("Contents", ()):
                    rel = obj["Key"][len(key_prefix) :]
                    if not rel or rel.endswith("/"):
                        continue  # "folder" placeholder objects made by some tools
                    modified = obj.get("LastModified")
                    yield Entry(
                        path=f"{folder}/{rel}",
                        size=int(obj["Size"]),
                        mtime=modified.timestamp() if modified else None,
                    )
        except Exception as exc:
            raise self._error(exc, f"list {prefix}") from None


def _total_size(content_range: str | None, length: int) -> int:
    """The object size from a ``bytes START-END/TOTAL`` Content-Range (or the body length)."""
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        if total.isdigit():
            return int(total)
    return length


def _read_whole(body: Any, length: int, provider: S3Provider, what: str) -> bytes:
    """A response body of ``length`` bytes read to its end; a short one is a transient error."""
    try:
        data = body.read()
    except Exception as exc:
        raise provider._error(exc, what) from None
    finally:
        with contextlib.suppress(Exception):
            body.close()
    if len(data) != length:
        raise TransientStorageError(
            f"site {provider.site}: {what}: the download ended early ({len(data)} of {length} bytes)",
            site=provider.site,
        )
    return data


class _BodyReader(io.RawIOBase):
    """A GetObject body as a raw stream whose errors are storage errors."""

    def __init__(self, body: Any, provider: S3Provider, what: str) -> None:
        self._body = body
        self._provider = provider
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._body.read(len(buffer))
        except Exception as exc:
            raise self._provider._error(exc, self._what) from None
        n = len(data)
        buffer[:n] = data
        return n

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._body.close()
        super().close()


class _RangedReader(io.RawIOBase):
    """A large object read in order while the next ranges download in parallel (like rclone's
    multi-thread streams), holding at most ``max_concurrency`` ranges in memory."""

    def __init__(
        self, provider: S3Provider, key: str, first: dict[str, Any], first_length: int, size: int, what: str
    ) -> None:
        self._provider = provider
        self._key = key
        self._size = size
        self._what = what
        self._part = provider.config.multipart_part_size
        self._etag = first.get("ETag")
        self._pool = cf.ThreadPoolExecutor(provider.config.max_concurrency, thread_name_prefix="s3-range")
        self._queue: list[cf.Future[bytes]] = []
        self._next = first_length  # first byte not yet requested
        self._first = _BodyReader(first["Body"], provider, what)
        self._first_left = first_length
        self._current = memoryview(b"")
        self._fill()

    def readable(self) -> bool:
        return True

    def _fetch(self, start: int, end: int) -> bytes:
        kwargs: dict[str, Any] = {
            "Bucket": self._provider.config.bucket,
            "Key": self._key,
            "Range": f"bytes={start}-{end}",
        }
        if self._etag:
            kwargs["IfMatch"] = self._etag  # the object must not change under a multi-range read
        try:
            resp = self._provider.client.get_object(**kwargs)
            etag = resp.get("ETag")
            if self._etag and etag and etag != self._etag:  # a server that ignores If-Match
                resp["Body"].close()
                raise TransientStorageError(
                    f"site {self._provider.site}: {self._what}: the object changed while it was read",
                    site=self._provider.site,
                )
            return _read_whole(resp["Body"], end - start + 1, self._provider, self._what)
        except Exception as exc:
            raise self._provider._error(exc, self._what) from None

    def _fill(self) -> None:
        while len(self._queue) < self._provider.config.max_concurrency and self._next < self._size:
            end = min(self._size, self._next + self._part) - 1
            self._queue.append(self._pool.submit(self._fetch, self._next, end))
            self._next = end + 1

    def readinto(self, buffer: Any) -> int:
        if self._first_left > 0:
            n = self._first.readinto(memoryview(buffer)[: min(len(buffer), self._first_left)])
            if n:
                self._first_left -= n
                if self._first_left == 0:
                    self._first.close()
                return n
            self._first_left = 0
            self._first.close()
            raise TransientStorageError(f"site {self._provider.site}: {self._what}: the download ended early")
        while not self._current:
            if not self._queue:
                return 0
            self._current = memoryview(self._queue.pop(0).result())
            self._fill()
        n = min(len(buffer), len(self._current))
        buffer[:n] = self._current[:n]
        self._current = self._current[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            for fut in self._queue:
                fut.cancel()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._first.close()
        super().close()


__all__ = ["S3Config", "S3Provider"]
