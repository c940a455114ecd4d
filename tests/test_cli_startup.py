"""Start-up of the ``sitesync`` command: what a process imports before it does anything.

Every ``sitesync`` process pays for the modules it imports (``sitesync --help`` once took a second,
most of it SQLAlchemy, pydantic and the whole client). These tests run the real command in a fresh
interpreter with ``-X importtime`` and check which packages it loaded; no time is asserted.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# the database, web and storage stacks: none is needed before a command runs
DATABASE_AND_WEB = (
    "sqlalchemy",
    "alembic",
    "psycopg",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "boto3",
    "botocore",
    "asyncssh",
)
# nor the settings models or the terminal rendering to print the command list; past the top level,
# typer itself parses and validates options with pydantic
NOT_FOR_HELP = (*DATABASE_AND_WEB, "pydantic", "rich")
NOT_FOR_COMMAND_HELP = (*DATABASE_AND_WEB, "rich")
# what a command that only reads the state database never needs
NOT_FOR_STATUS = ("alembic", "fastapi", "starlette", "uvicorn", "httpx", "boto3", "botocore", "asyncssh")

# sitesync's own modules a read-only command never needs: the engine (worker, guarded removal),
# the REST models, the workfile scanner and the preferred-content rule language
NOT_FOR_STATUS_MODULES = (
    "sitesync.engine.worker",
    "sitesync.engine.removal",
    "sitesync.api.models",
    "sitesync.workfiles.scan",
    "sitesync.workflows.preferred",
)
# on SQLite, neither command loads SQLAlchemy's PostgreSQL dialect (state/schema.py adds the
# PostgreSQL-only index options when a PostgreSQL engine is made)
NOT_ON_SQLITE_MODULES = ("sqlalchemy.dialects.postgresql",)

_IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$")


def imported_packages(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -X importtime -m sitesync ARGS``: the result and the top-level packages it imported."""
    proc, modules = imported_modules(args, env)
    return proc, {name.split(".")[0] for name in modules}


def imported_modules(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -X importtime -m sitesync ARGS``: the result and every module it imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sitesync", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    names = set()
    for line in proc.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            names.add(match.group(1))
    assert names, f"no -X importtime output:\n{proc.stderr[-2000:]}"
    return proc, names


def command_env(tmp_path: Path, db: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SITESYNC_")}
    env["SITESYNC_HOME"] = str(tmp_path / "home")
    if db is not None:
        env["SITESYNC_DB"] = db
    return env


@pytest.mark.parametrize(
    ("args", "forbidden"),
    [
        (["--help"], NOT_FOR_HELP),
        (["site", "--help"], NOT_FOR_COMMAND_HELP),
        (["sync", "--help"], NOT_FOR_COMMAND_HELP),
    ],
)
def test_help_imports_neither_the_database_nor_the_web_stack(
    tmp_path: Path, args: list[str], forbidden: tuple[str, ...]
) -> None:
    proc, names = imported_packages(args, command_env(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Usage:" in proc.stdout
    loaded = sorted(names.intersection(forbidden))
    assert not loaded, f"`sitesync {' '.join(args)}` imported {loaded}; import them where they are used"


def test_a_usage_error_imports_no_database_stack_either(tmp_path: Path) -> None:
    proc, names = imported_packages(["no-such-command"], command_env(tmp_path))
    assert proc.returncode == 2
    assert "no-such-command" in proc.stderr
    assert not names.intersection(DATABASE_AND_WEB)


def test_status_and_an_idle_sync_import_no_web_or_cloud_stack(tmp_path: Path) -> None:
    env = command_env(tmp_path, f"sqlite:///{tmp_path / 'state.db'}")
    studio = tmp_path / "studio"
    studio.mkdir()
    (studio / "a.txt").write_text("a")
    for setup in (
        ["init"],
        ["project", "create", "P", "--root", f"work={studio}"],
        ["publish", "P", str(studio / "a.txt"), "--folder", "f", "--product", "p", "--version", "1", "--name", "n"],
    ):
        done = subprocess.run([sys.executable, "-m", "sitesync", *setup], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    for args in (["status", "P"], ["sync", "--once"]):
        proc, modules = imported_modules(args, env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        names = {m.split(".")[0] for m in modules}
        assert "sqlalchemy" in names  # it did read the database
        loaded = sorted(names.intersection(NOT_FOR_STATUS))
        assert not loaded, f"`sitesync {' '.join(args)}` imported {loaded}"
        assert "sqlalchemy.dialects.sqlite" in modules
        loaded = sorted(modules.intersection(NOT_ON_SQLITE_MODULES))
        assert not loaded, f"`sitesync {' '.join(args)}` on SQLite imported {loaded}"
        if args[0] == "status":
            loaded = sorted(modules.intersection(NOT_FOR_STATUS_MODULES)) + sorted(names & {"pathspec"})
            assert not loaded, f"`sitesync status` imported {loaded}; import them where they are used"
        else:
            assert "sitesync.engine.worker" in modules  # the guard above is about `status`, not a broken probe


def test_import_sitesync_alone_leaves_the_client_for_its_first_use() -> None:
    code = (
        "import sys, sitesync\n"
        "assert 'sqlalchemy' not in sys.modules and 'pydantic' not in sys.modules, 'import sitesync loaded them'\n"
        "from sitesync import Client\n"
        "import sitesync.client\n"
        "assert Client is sitesync.client.Client and sitesync.Client is Client\n"
        "assert 'sqlalchemy' in sys.modules\n"
        "try:\n"
        "    sitesync.NoSuchThing\n"
        "except AttributeError as exc:\n"
        "    assert 'NoSuchThing' in str(exc)\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
