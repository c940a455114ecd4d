"""Running the suite in parallel (pytest-xdist, ``scripts/test`` passes ``-n``) while a few tests
still run alone.

A test marked ``@pytest.mark.serial`` measures something that load from the other xdist workers
would distort (elapsed time of a rate limiter, say), or needs the whole machine. Under xdist it
takes an exclusive lock that every other test takes shared: it waits until the tests running on
the other workers finish, and new ones wait until it is done. New tests wait at a turnstile while a
serial test waits, so a steady stream of parallel tests cannot starve it. The locks are ``flock``
files in the run's shared base temp folder (one per ``pytest`` run), released by the kernel if a
worker dies. Without xdist (``-n 0``) nothing is locked.

Each ``serial`` mark carries a comment saying why the test must run alone.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest


@contextmanager
def _flock(path: Path, mode: int) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@pytest.fixture(autouse=True)
def _serial_or_shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    # every worker's base temp is <run folder>/popen-gwN: the run folder is shared by this run only
    run_dir = tmp_path_factory.getbasetemp().parent
    gate, main = run_dir / "serial-gate.lock", run_dir / "serial-main.lock"
    if request.node.get_closest_marker("serial"):
        with ExitStack() as alone:
            with _flock(gate, fcntl.LOCK_EX):  # new tests stop at the gate...
                alone.enter_context(_flock(main, fcntl.LOCK_EX))  # ...and the running ones finish
            yield
    else:
        with _flock(gate, fcntl.LOCK_EX):
            pass
        with _flock(main, fcntl.LOCK_SH):
            yield
