"""Database errors have one owner: this module turns SQLAlchemy exceptions into sitesync's error
tree (``errors.py``) and retries the transactions a database aborted because of a concurrent one.

Every connection of the state store is opened and used inside ``database_errors`` (``base.py``),
so no SQLAlchemy exception leaves ``state/``: faces (CLI, REST API, dashboard) and the engine see
``DatabaseError`` and its children only. ``retry_transactions`` wraps the public methods of the
store: a PostgreSQL deadlock (SQLSTATE 40P01) or serialization failure (40001) rolled the whole
transaction back, so running the method again is safe; it is retried a few times with a short,
growing pause before ``DatabaseBusyError`` reaches the caller. (Every store method runs its writes
in one transaction; a method with several runs each in its own, and they are idempotent.)
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from sitesync.errors import (
    DatabaseBusyError,
    DatabaseError,
    DatabaseUnreachableError,
    SitesyncError,
)

log = logging.getLogger("sitesync.state")

TRANSIENT_SQLSTATES = ("40P01", "40001")  # deadlock detected, serialization failure
RETRY_ATTEMPTS = 5
T = TypeVar("T")


def _reason(exc: SQLAlchemyError) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _masked(engine: Engine) -> str:
    from sitesync.state.database import mask_url

    return mask_url(engine.url)


def translate(exc: SQLAlchemyError, engine: Engine) -> SitesyncError:
    """The sitesync error for a SQLAlchemy exception met while using ``engine``."""
    reason = _reason(exc)
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if sqlstate in TRANSIENT_SQLSTATES:
        return DatabaseBusyError(
            f"the database aborted the change because a concurrent one held the same rows ({reason}); "
            "it was tried again without success: try once more"
        )
    if isinstance(exc, OperationalError):
        if engine.dialect.name == "sqlite":
            if "locked" in reason or "busy" in reason:
                return DatabaseBusyError(
                    f"the state database {_masked(engine)} stayed locked by another process ({reason}); try again"
                )
            return DatabaseError(f"cannot use the state database {_masked(engine)}: {reason}; check --db / SITESYNC_DB")
        return DatabaseUnreachableError(
            f"cannot use the state database {_masked(engine)}: {reason}; "
            "check --db / SITESYNC_DB and that the server is running"
        )
    if isinstance(exc, IntegrityError):
        return DatabaseError(f"the database refused a change as inconsistent ({reason}); nothing was changed")
    if isinstance(exc, DBAPIError):
        return DatabaseError(f"database error: {reason}; retry, or check the database server")
    return DatabaseError(f"database error: {reason}")


@contextlib.contextmanager
def database_errors(engine: Engine) -> Iterator[None]:
    """Run a block that uses ``engine``; SQLAlchemy exceptions leave it as sitesync errors."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise translate(exc, engine) from exc


def retrying(fn: Callable[..., T], attempts: int = RETRY_ATTEMPTS) -> Callable[..., T]:
    """``fn`` run again (up to ``attempts`` times) when the database aborted it as busy."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        for attempt in range(attempts):
            try:
                return fn(*args, **kwargs)
            except DatabaseBusyError:
                if attempt == attempts - 1:
                    raise
                delay = 0.02 * (2**attempt) * (1 + random.random())
                log.info("%s: the database aborted a concurrent change; trying again in %.2fs", fn.__name__, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    wrapper.__sitesync_retrying__ = True  # type: ignore[attr-defined]
    return wrapper


NOT_RETRIED = frozenset({"close", "migrate", "notification_relay"})


def retry_transactions(cls: type[T]) -> type[T]:
    """Class decorator: every public method of the store (generators aside: they cannot be re-run
    halfway) retries the transactions the database aborted as busy."""
    for name, member in inspect.getmembers(cls, inspect.isfunction):
        if name.startswith("_") or name in NOT_RETRIED or inspect.isgeneratorfunction(member):
            continue
        if getattr(member, "__sitesync_retrying__", False):
            continue
        setattr(cls, name, retrying(member))
    return cls


__all__ = ["TRANSIENT_SQLSTATES", "database_errors", "retry_transactions", "retrying", "translate"]
