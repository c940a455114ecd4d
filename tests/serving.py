"""A real `sitesync serve` process for a studio (``reliability.harness.serve_process``): yields its
first line, address and dashboard link once the API answers, and stops it with SIGTERM."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from reliability.harness import Served, serve_process

from tests.conftest import Studio


@contextmanager
def serving(studio: Studio, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    full_env = studio.env()
    full_env.pop("SITESYNC_TOKEN", None)
    full_env.update(env or {})
    with serve_process(full_env, *args) as served:
        yield served
