"""`sitesync demo` end to end, as the README's first command runs it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.conftest import run_cli


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_demo_end_to_end(tmp_path: Path, home: Path) -> None:
    target = tmp_path / "demo"
    proc = run_cli("demo", "--dir", str(target), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "transferred 3 files" in out and "transferred 120 files" in out
    assert "sync " in out and "%" in out, "progress must be shown"
    for word in ("status", "where the render is", "present"):
        assert word in out

    env_home = target / "home"
    status = run_cli("status", "demo", "--json", env={**_env(), "SITESYNC_HOME": str(env_home)}, check=True)
    data = json.loads(status.stdout)
    assert data["total"] == 4
    for rep in data["representations"]:
        for site_state in rep["sites"].values():
            assert site_state["status"] == "present"
    frames = sorted((target / "local").rglob("*.exr"))
    studio_frames = sorted((target / "studio").rglob("*.exr"))
    assert len(frames) == 120 and len(studio_frames) == 120
    assert _digest(frames[0]) == _digest(studio_frames[0])

    # running it again on the same folder starts afresh
    again = run_cli("demo", "--dir", str(target), timeout=300)
    assert again.returncode == 0, again.stderr


def test_demo_refuses_a_foreign_folder(tmp_path: Path, home: Path) -> None:
    target = tmp_path / "precious"
    target.mkdir()
    (target / "thesis.doc").write_text("do not delete")
    proc = run_cli("demo", "--dir", str(target))
    assert proc.returncode == 2 and "not empty" in proc.stderr
    assert (target / "thesis.doc").read_text() == "do not delete"


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
