"""Provider discovery through the ``sitesync.providers`` entry-point group.

Built-in and third-party providers register the same way (``pyproject.toml``:
``[project.entry-points."sitesync.providers"] name = "package.module:Class"``). Nothing is imported
until a provider is asked for; a provider whose optional dependency is missing gives an error that
says what to install.
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points

from sitesync.errors import ProviderNotAvailableError
from sitesync.providers.base import Provider

ENTRY_POINT_GROUP = "sitesync.providers"


_registered: dict[str, type[Provider]] = {}


@functools.cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def register(name: str, cls: type[Provider]) -> None:
    """Register a provider class in this process only (embedding applications, tests).
    Installed providers use the entry-point group instead."""
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise TypeError(f"{cls!r} is not a sitesync Provider class")
    _registered[name] = cls
    provider_class.cache_clear()


def unregister(name: str) -> None:
    _registered.pop(name, None)
    provider_class.cache_clear()


def provider_names() -> list[str]:
    return sorted(set(_entry_points()) | set(_registered))


def installed_provider_names() -> list[str]:
    """The providers installed through the entry-point group (not those registered in-process)."""
    return sorted(_entry_points())


@functools.cache
def provider_class(name: str) -> type[Provider]:
    if name in _registered:
        return _registered[name]
    eps = _entry_points()
    if name not in eps:
        raise ProviderNotAvailableError(
            f"unknown provider {name!r}; installed providers: {', '.join(provider_names())}"
        )
    try:
        cls = eps[name].load()
    except ModuleNotFoundError as exc:
        raise ProviderNotAvailableError(
            f"provider {name!r} needs the Python package {exc.name!r}; install it (pip install 'sitesync[{name}]')"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise ProviderNotAvailableError(f"entry point {name!r} does not name a sitesync Provider class")
    return cls
