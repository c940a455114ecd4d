"""Secrets kept out of every log line, sitesync's own and third-party libraries' alike.

At debug level botocore prints signed request headers (``Authorization``, ``X-Amz-Security-Token``),
HTTP clients print URLs with signatures or tokens, and a subprocess's own log may echo the
options it was given. ``install()`` (called by every ``sitesync.Client`` and by the command line)
wraps the process's log record factory once, so every record is redacted when it is created,
whichever logger made it and whichever handler writes it:

* each secret value this process has used (``remember()``: every ``reveal()`` of a site's secret,
  rclone's obscured forms of them) is replaced by ``********``;
* credential-shaped fields are blanked whoever owns them: authorization and session-token
  headers, signatures and credentials in URLs, ``password=``/``token=`` assignments.

Exception tracebacks attached to records are redacted the same way.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

MASK = "********"
MIN_SECRET_LENGTH = 4  # shorter values would blank ordinary words

_HEADER_NAMES = (
    r"authorization|proxy-authorization|x-amz-security-token|x-amz-signature|x-amz-credential|"
    r"x-goog-api-key|x-api-key|cookie|set-cookie|x-dropbox-api-arg-token"
)
_PATTERNS = [
    # 'Authorization': b'AWS4-HMAC-SHA256 Credential=...'  /  "X-Amz-Security-Token": "..."
    (re.compile(rf"""(?i)(['"]?(?:{_HEADER_NAMES})['"]?\s*[:=]\s*b?)(['"])(.*?)\2"""), rf"\1\2{MASK}\2"),
    # Authorization: Bearer abc   (header dumps, one per line)
    (re.compile(rf"(?im)^(\s*(?:{_HEADER_NAMES})\s*:\s*)(\S.*)$"), rf"\1{MASK}"),
    # ?X-Amz-Signature=...&X-Amz-Credential=...&access_token=...
    (
        re.compile(
            r"(?i)([?&;](?:x-amz-signature|x-amz-credential|x-amz-security-token|signature|sig|access_token|"
            r"refresh_token|token|key|client_secret|password|code)=)[^&\s'\"]+"
        ),
        rf"\1{MASK}",
    ),
    # password="..." / token: ... / secret_access_key = ... in text
    (
        re.compile(
            r"(?i)\b((?:pass(?:word|phrase)?|secret(?:_access_key)?|session_token|access_token|refresh_token|"
            r"client_secret|api_key|bearer)\b['\"]?\s*[=:]\s*)(['\"]?)[^\s'\",}]+\2"
        ),
        rf"\1\2{MASK}\2",
    ),
    # botocore: "Signature:\n<64 hex>" and "Credential=AKIA.../20250101/..., Signature=<hex>"
    (re.compile(r"(?i)(signature[:=]\s*)[0-9a-f]{64}"), rf"\1{MASK}"),
    (re.compile(r"(?i)(credential=)[^/\s,'\"]+"), rf"\1{MASK}"),
]

_secrets: set[str] = set()
_lock = threading.Lock()
_installed = False


def remember(value: str | None) -> None:
    """Never let ``value`` (a secret this process uses) reach a log line."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)
            for line in value.splitlines():  # a multi-line secret (a key file) may be logged in parts
                if len(line.strip()) >= 16:
                    _secrets.add(line.strip())


def redact(text: str) -> str:
    """``text`` with every remembered secret and credential-shaped field masked."""
    if not text:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redacted_record(record: logging.LogRecord) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except Exception:  # a record whose arguments do not fit its format: keep it as logging would
        return record
    redacted = redact(message)
    if redacted != message:
        args = record.args
        if isinstance(args, tuple) and all(isinstance(a, str | int | float) for a in args):
            # keep the shape: some formatters (uvicorn's access log) unpack the arguments
            record.msg = redact(str(record.msg))
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
            if redact(record.getMessage()) != record.getMessage():
                record.msg, record.args = redacted, None
        else:
            record.msg, record.args = redacted, None
    if record.exc_info and record.exc_info[0] is not None:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        record.exc_info = None
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


def install() -> None:
    """Redact every log record of this process from now on (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _redacted_record(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)


__all__ = ["MASK", "install", "redact", "remember"]
