"""The ``sitesync`` command run inside the test process: the same entry point (``sitesync.cli.main``)
with its own arguments, environment and captured output, in milliseconds instead of a process
start. An exception the entry point does not turn into a one-line error escapes to the test, so a
would-be traceback fails it. Used where a test drives the command hundreds of times."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from typing import Any

import typer.main

_build_command = typer.main.get_command
_commands: dict[int, Any] = {}


def _cached_command(app: Any) -> Any:
    """typer rebuilds the click command tree on every call (most of an in-process run's time);
    the tree of one app never changes within the test process."""
    command = _commands.get(id(app))
    if command is None:
        command = _commands[id(app)] = _build_command(app)
    return command


def run_cli_inprocess(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    from sitesync.cli import main

    # as a real process has them: stdout strict UTF-8, stderr escaping what it cannot encode
    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_bytes, encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(err_bytes, encoding="utf-8", errors="backslashreplace", write_through=True)
    saved_env, saved_argv = dict(os.environ), sys.argv
    os.environ.clear()
    os.environ.update(env)
    sys.argv = ["sitesync", *args]
    code = 0
    typer.main.get_command = _cached_command
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        typer.main.get_command = _build_command
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv = saved_argv
    return subprocess.CompletedProcess(
        ["sitesync", *args], code, out_bytes.getvalue().decode(), err_bytes.getvalue().decode()
    )
