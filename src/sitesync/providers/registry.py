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


@functools.cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def provider_names() -> list[str]:
    return sorted(_entry_points())


@functools.cache
def provider_class(name: str) -> type[Provider]:
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
