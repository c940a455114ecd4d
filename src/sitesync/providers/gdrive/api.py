"""The Drive v3 API as the ``gdrive`` provider uses it: credentials, the service, and every call
going through one place that retries throttling and turns Google's errors into sitesync's.

The service is built from the discovery document shipped with ``google-api-python-client`` (no
network fetch); ``endpoint`` rewrites its ``rootUrl``/``baseUrl``, which moves media uploads too
(``client_options.api_endpoint`` would not). ``httplib2`` is not thread-safe, so every thread gets
its own authorised connection while all share the credentials and the service description.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from sitesync.errors import PermanentStorageError, SiteUnavailableError, StorageError, TransientStorageError
from sitesync.providers._cloud import Backoff, Retry, parse_retry_after, platform_path
from sitesync.providers.gdrive.config import GoogleDriveConfig
from sitesync.secretrefs import reveal

T = TypeVar("T")


class SourceStreamError(Exception):
    """Carries an error of the source stream or of ``commit_check`` through the Google client, so
    ``DriveApi.call`` re-raises the original unchanged (a failing source or a cancelled transfer
    must never look like a Drive failure)."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


SCOPES = ["https://www.googleapis.com/auth/drive"]
THROTTLE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "sharingRateLimitExceeded"})
STORAGE_FULL_REASONS = frozenset({"storageQuotaExceeded", "teamDriveFileLimitExceeded", "quotaExceeded"})


@cache
def _static_document() -> dict[str, Any]:
    from googleapiclient.discovery_cache import get_static_doc

    text = get_static_doc("drive", "v3")
    if text is None:  # pragma: no cover - the library always ships it
        raise SiteUnavailableError("google-api-python-client does not ship the Drive v3 discovery document")
    return json.loads(text)


def discovery_document(endpoint: str | None) -> dict[str, Any]:
    doc = dict(_static_document())
    if endpoint:
        root = endpoint.rstrip("/") + "/"
        doc["rootUrl"] = root
        doc["mtlsRootUrl"] = root
        doc["baseUrl"] = root + doc["servicePath"]
    return doc


class DriveNotFound(PermanentStorageError):
    """Drive answered 404: the file, folder or upload session is not there (or not shared)."""


def error_reason(exc: BaseException) -> str:
    """Google's machine-readable reason of an ``HttpError`` (``rateLimitExceeded``, ``notFound``...)."""
    content = getattr(exc, "content", b"") or b""
    try:
        body = json.loads(content.decode("utf-8", "replace"))
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        for item in error.get("errors") or ():
            if isinstance(item, dict) and item.get("reason"):
                return str(item["reason"])
        return str(error.get("status") or "")
    return ""


def error_message(exc: BaseException) -> str:
    content = getattr(exc, "content", b"") or b""
    try:
        body = json.loads(content.decode("utf-8", "replace"))
        message = body["error"]["message"]
        if isinstance(message, str) and message:
            return message
    except (ValueError, KeyError, TypeError):
        pass
    return getattr(exc, "reason", None) or type(exc).__name__


def http_status(exc: BaseException) -> int | None:
    resp = getattr(exc, "resp", None)
    status = getattr(resp, "status", None)
    return int(status) if status is not None else None


class DriveApi:
    """Credentials, service and error handling of one ``gdrive`` site."""

    def __init__(self, site: str, config: GoogleDriveConfig) -> None:
        self.site = site
        self.config = config
        self.backoff = Backoff(config.max_retry_wait)
        self._lock = threading.Lock()
        self._credentials: Any = None
        self._service: Any = None
        self._local = threading.local()
        self._generation = 0
        self.account = "the service account"

    # ------------------------------------------------------------------ credentials and service

    def _load_credentials(self) -> Any:
        from google.oauth2 import service_account

        site = self.site
        if self.config.credentials_json is not None:
            raw = reveal(self.config.credentials_json, site=site, key="credentials_json") or ""
            where = "option credentials_json"
        else:
            path = platform_path(self.config.credentials, site=site, key="credentials") or ""
            where = f"key file {path}"
            try:
                with open(path, encoding="utf-8") as fh:
                    raw = fh.read()
            except OSError as exc:
                raise SiteUnavailableError(
                    f"site {site}: cannot read the service account {where} ({exc.strerror}); "
                    "check the credentials option",
                    site=site,
                ) from None
        try:
            info = json.loads(raw)
            creds = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        except (ValueError, KeyError, TypeError) as exc:
            # never echo the content: it holds the private key
            detail = "not JSON" if isinstance(exc, json.JSONDecodeError) else "not a service account key"
            raise SiteUnavailableError(
                f"site {site}: the service account {where} is {detail}; download a new JSON key "
                "from the Google Cloud console",
                site=site,
            ) from None
        self.account = info.get("client_email") or self.account
        if self.config.impersonate:
            creds = creds.with_subject(self.config.impersonate)
        return creds

    def service(self) -> Any:
        with self._lock:
            if self._service is None:
                from google_auth_httplib2 import AuthorizedHttp
                from googleapiclient.discovery import build_from_document
                from googleapiclient.http import HttpRequest

                self._credentials = self._load_credentials()
                self._generation += 1

                def request_builder(_http: Any, *args: Any, **kwargs: Any) -> HttpRequest:
                    return HttpRequest(self.http(), *args, **kwargs)

                self._service = build_from_document(
                    discovery_document(self.config.endpoint),
                    http=AuthorizedHttp(self._credentials, http=self._raw_http()),
                    requestBuilder=request_builder,
                )
            return self._service

    def _raw_http(self) -> Any:
        from googleapiclient.http import build_http

        http = build_http()
        http.timeout = self.config.timeout
        return http

    def http(self) -> Any:
        """This thread's authorised connection (``httplib2.Http`` is not thread-safe)."""
        from google_auth_httplib2 import AuthorizedHttp

        local = self._local
        if getattr(local, "generation", None) != self._generation or local.http is None:
            local.http = AuthorizedHttp(self._credentials, http=self._raw_http())
            local.generation = self._generation
        return local.http

    def reset(self) -> None:
        """Forget credentials and connections: the next call reads the key file again."""
        with self._lock:
            self._service = None
            self._credentials = None
            self._generation += 1

    # ------------------------------------------------------------------ calls

    def call(self, fn: Callable[[], T], what: str) -> T:
        """Run one API call with bounded back-off; raise sitesync errors only."""
        try:
            return self.backoff.run(fn, self._classify, lambda retry, exc, waited: self._exhausted(retry, exc, what))
        except SourceStreamError as exc:
            raise exc.original from None
        except StorageError:
            raise
        except Exception as exc:
            raise self.translate(exc, what) from None

    def execute(self, request: Any, what: str) -> Any:
        return self.call(lambda: request.execute(num_retries=0), what)

    def _classify(self, exc: BaseException) -> Retry | None:
        status = http_status(exc)
        if status is not None:
            after = parse_retry_after(exc.resp.get("retry-after"))  # type: ignore[attr-defined]
            if status == 429 or (status == 403 and error_reason(exc) in THROTTLE_REASONS):
                return Retry("throttled", after)
            if status >= 500:
                return Retry("server", after)
            return None
        if isinstance(exc, (TimeoutError, socket.timeout, ConnectionResetError, BrokenPipeError)):
            return Retry("server")
        return None

    def _exhausted(self, retry: Retry, exc: BaseException, what: str) -> StorageError:
        waited = f"for {self.config.max_retry_wait:.0f} s"
        if retry.reason == "throttled":
            # the whole site is throttled: back off the site, do not burn the files' attempts
            return SiteUnavailableError(
                f"site {self.site}: Google Drive keeps asking to slow down ({http_status(exc)} "
                f"{error_reason(exc) or 'rate limit'}) {waited} during {what}; backing off the site",
                site=self.site,
            )
        return TransientStorageError(
            f"site {self.site}: {what}: Google Drive keeps failing ({self._describe(exc)}) {waited}", site=self.site
        )

    def _describe(self, exc: BaseException) -> str:
        status = http_status(exc)
        if status is not None:
            return f"{status} {error_message(exc)}"
        return str(exc) or type(exc).__name__

    def translate(self, exc: BaseException, what: str) -> StorageError:
        """A Google or network exception as a sitesync storage error (one line, no secrets)."""
        from google.auth import exceptions as auth_exceptions

        site = self.site
        if isinstance(exc, auth_exceptions.RefreshError):
            self.reset()
            return SiteUnavailableError(
                f"site {site}: Google refused the credentials of {self.account} ({_first_line(exc)}); "
                "check the service account key and that it is enabled",
                site=site,
            )
        if isinstance(exc, auth_exceptions.TransportError) or _unreachable(exc):
            return SiteUnavailableError(
                f"site {site}: cannot reach Google Drive ({_first_line(exc)}); check the network", site=site
            )
        status = http_status(exc)
        if status is None:
            if isinstance(exc, OSError):
                return TransientStorageError(f"site {site}: {what}: {_first_line(exc)}", site=site)
            return TransientStorageError(f"site {site}: {what}: {type(exc).__name__}: {_first_line(exc)}", site=site)
        reason = error_reason(exc)
        detail = f"{status} {error_message(exc)}"
        if status == 401:
            self.reset()
            return SiteUnavailableError(
                f"site {site}: Google Drive rejected the credentials of {self.account} ({detail})", site=site
            )
        if status == 403 and reason in STORAGE_FULL_REASONS:
            return PermanentStorageError(
                f"site {site}: {what}: the Drive storage quota is used up ({detail}); service accounts have no "
                "storage of their own: use a shared drive or `impersonate` a user, or free space",
                site=site,
            )
        if status == 404:
            return DriveNotFound(
                f"site {site}: {what}: {detail}; check that the folder is shared with {self.account}", site=site
            )
        if status == 403:
            return PermanentStorageError(
                f"site {site}: {what}: {detail}; check that the folder is shared with {self.account}", site=site
            )
        if status == 429 or status >= 500:
            return TransientStorageError(f"site {site}: {what}: {detail}", site=site)
        return PermanentStorageError(f"site {site}: {what}: {detail}", site=site)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _unreachable(exc: BaseException) -> bool:
    import httplib2

    if isinstance(exc, (httplib2.ServerNotFoundError, ConnectionRefusedError, socket.gaierror)):
        return True
    return isinstance(exc, OSError) and getattr(exc, "errno", None) in (101, 111, 113)  # unreachable / refused
