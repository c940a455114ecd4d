"""Provider discovery through the ``sitesync.providers`` entry-point group.

Built-in and third-party providers register the same way (``pyproject.toml``:
``[project.entry-points."sitesync.providers"] name = "package.module:Class"``). Nothing is imported
until a provider is asked for; a provider whose optional dependency is missing gives an error that
says what to install.

Test-only providers (``memory``: in-process storage; ``faulty``: fault injection) register in a
second group, ``sitesync.test_providers``. They are never listed to users as storage choices (``site
add``, ``info``, the dashboard, the generated reference) and resolve only where test providers are
switched on: ``sitesync.testing.enable_test_providers()`` sets ``SITESYNC_TEST_PROVIDERS=1`` in the
environment, so the worker and CLI subprocesses a test starts resolve them too.
"""

from __future__ import annotations

import functools
import os
from importlib.metadata import EntryPoint, entry_points

from sitesync.errors import ProviderNotAvailableError
from sitesync.providers.base import Provider

ENTRY_POINT_GROUP = "sitesync.providers"
TEST_ENTRY_POINT_GROUP = "sitesync.test_providers"
TEST_PROVIDERS_ENV = "SITESYNC_TEST_PROVIDERS"


_registered: dict[str, type[Provider]] = {}


@functools.cache
def _entry_points(group: str = ENTRY_POINT_GROUP) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def providers_for_tests_enabled() -> bool:
    """Whether the test-only providers resolve in this process (``SITESYNC_TEST_PROVIDERS=1``)."""
    return os.environ.get(TEST_PROVIDERS_ENV, "") not in ("", "0")


def register(name: str, cls: type[Provider]) -> None:
    """Register a provider class in this process only (embedding applications, tests).
    Installed providers use the entry-point group instead."""
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise TypeError(f"{cls!r} is not a sitesync Provider class")
    _registered[name] = cls
    _load.cache_clear()


def unregister(name: str) -> None:
    _registered.pop(name, None)
    _load.cache_clear()


def provider_names() -> list[str]:
    """The storage choices offered to users: installed providers and those registered in-process."""
    return sorted(set(_entry_points()) | set(_registered))


def installed_provider_names() -> list[str]:
    """The providers installed through the entry-point group (not those registered in-process,
    nor the test-only ones)."""
    return sorted(_entry_points())


def builtin_provider_names() -> list[str]:
    """The providers sitesync itself ships (what the committed reference documents), without those
    other installed packages add."""
    return sorted(n for n, ep in _entry_points().items() if ep.dist is None or ep.dist.name == "sitesync")


def provider_names_for_tests() -> list[str]:
    """The test-only providers installed (``sitesync.test_providers``), whether enabled or not."""
    return sorted(_entry_points(TEST_ENTRY_POINT_GROUP))


def provider_class(name: str) -> type[Provider]:
    return _load(name, providers_for_tests_enabled())


@functools.cache
def _load(name: str, with_test_providers: bool) -> type[Provider]:
    if name in _registered:
        return _registered[name]
    eps = _entry_points()
    if name not in eps:
        tests = _entry_points(TEST_ENTRY_POINT_GROUP)
        if name in tests and with_test_providers:
            eps = tests
        elif name in tests:
            raise ProviderNotAvailableError(
                f"provider {name!r} is for sitesync's own tests and is not a storage choice; "
                f"use one of: {', '.join(provider_names())}"
            )
        else:
            raise ProviderNotAvailableError(
                f"unknown provider {name!r}; installed providers: {', '.join(provider_names())}"
            )
    try:
        cls = eps[name].load()
    except ModuleNotFoundError as exc:
        dist = eps[name].dist
        package = f"sitesync[{name}]" if dist is None or dist.name == "sitesync" else str(exc.name)
        raise ProviderNotAvailableError(
            f"provider {name!r} needs the Python package {exc.name!r}; install it (pip install '{package}')"
        ) from None
    except Exception as exc:  # a broken or outdated provider package: that site is unusable, nothing else
        raise ProviderNotAvailableError(
            f"provider {name!r} could not be loaded ({type(exc).__name__}: {exc}); update or reinstall its package"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise ProviderNotAvailableError(f"entry point {name!r} does not name a sitesync Provider class")
    return cls
