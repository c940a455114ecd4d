"""Two workstations sharing one catalog, for the workfile tests: two installations (separate
``SITESYNC_HOME``, site ids ``ws-a``/``ws-b``, local roots) over one database (SQLite file or
PostgreSQL), with the studio storage as the project's remote site. Each machine works in its own
site's ``work`` root: ``<tmp>/ws-a/work/show/...``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sitesync import Client

PROJECT = "show"
SCENE = "sh010/work/anim/sh010_anim_v001.ma"


@dataclass
class Machine:
    name: str  # its site id
    home: Path
    root: Path  # its local root (the site's "work" root is root/work)
    db_url: str
    client: Client
    clock: list[float] = field(default_factory=lambda: [time.time() - 1000.0])

    def path(self, rel: str) -> Path:
        return self.root / "work" / PROJECT / rel

    def save(self, rel: str, data: bytes) -> Path:
        """Save like a DCC does, with a modification time safely past the scanner's settle time
        (each save a distinct, increasing time)."""
        path = self.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.clock[0] += 1.0
        os.utime(path, (self.clock[0], self.clock[0]))
        return path

    def read(self, rel: str) -> bytes | None:
        path = self.path(rel)
        return path.read_bytes() if path.exists() else None

    def files(self) -> dict[str, bytes]:
        """Every file of the project's work area on this machine (site markers excluded)."""
        base = self.root / "work" / PROJECT
        return {str(p.relative_to(base)): p.read_bytes() for p in base.rglob("*") if p.is_file()} if base.exists() else {}

    def sync(self) -> Any:
        return self.client.work_sync(PROJECT)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SITESYNC_")}
        env.update({"SITESYNC_HOME": str(self.home), "SITESYNC_DB": self.db_url, "SITESYNC_SITE_ID": self.name})
        return env

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sitesync", *args], capture_output=True, text=True, env=self.env(), timeout=timeout
        )


@dataclass
class Workstations:
    a: Machine
    b: Machine
    studio: Path  # the studio storage (the project's remote site), root "work"

    def studio_files(self) -> dict[str, bytes]:
        base = self.studio / PROJECT
        return {str(p.relative_to(base)): p.read_bytes() for p in base.rglob("*") if p.is_file()} if base.exists() else {}

    def settle(self, rounds: int = 2) -> None:
        """Both machines sync, in turn, a few times (as their workers would)."""
        for _ in range(rounds):
            for m in (self.a, self.b):
                result = m.sync()
                assert not result.errors, result.errors

    def machines(self) -> tuple[Machine, Machine]:
        return self.a, self.b


def _client(name: str, home: Path, db_url: str) -> Client:
    old = os.environ.get("SITESYNC_SITE_ID")
    os.environ["SITESYNC_SITE_ID"] = name
    try:
        return Client(db=db_url, home=home)
    finally:
        if old is None:
            os.environ.pop("SITESYNC_SITE_ID", None)
        else:
            os.environ["SITESYNC_SITE_ID"] = old


@contextmanager
def workstations(tmp_path: Path, db_url: str, **workfiles: Any) -> Iterator[Workstations]:
    studio = tmp_path / "studio"
    studio.mkdir()
    machines = []
    for name in ("ws-a", "ws-b"):
        home = tmp_path / f"home-{name}"
        client = _client(name, home, db_url)
        if not machines:
            client.init()
            client.create_project(PROJECT, {"work": {"any": str(studio)}})
            settings = {"active_site": "local", "remote_site": "studio", "retry_backoff": 0, "workfiles.enabled": True}
            settings.update({f"workfiles.{k}": v for k, v in workfiles.items()})
            for key, value in settings.items():
                client.settings_set(key, value, project=PROJECT)
        root = tmp_path / name
        client.settings_set("local_root", str(root), local=True)
        machines.append(Machine(name, home, root, db_url, client))
    try:
        yield Workstations(machines[0], machines[1], studio)
    finally:
        for m in machines:
            m.client.close()
