"""``sitesync demo``: a throwaway studio that shows the system working end to end.

It builds, under one folder: the studio storage, this machine's local site, an artist's work area
and a SQLite state database (``SITESYNC_HOME`` = ``DIR/home``). Then it publishes a 120-frame
render sequence on the studio storage (as a farm would) and three files from the artist's machine,
uploads the artist's publishes to the studio with a live progress bar, downloads the render to the
local site, and prints the status table and where the files are.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from rich.rule import Rule

from sitesync.cli.app import _print_project_status, _print_report, run_with_progress
from sitesync.cli.render import console, human_size, status_text, table
from sitesync.client import Client
from sitesync.errors import InvalidInputError
from sitesync.facade.records import RepresentationWhereabouts

MARKER = ".sitesync-demo"
PROJECT = "demo"


def _write_random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        remaining = size
        while remaining:
            n = min(remaining, 1024 * 1024)
            fh.write(os.urandom(n))
            remaining -= n


def _prepare_dir(directory: Path | None) -> Path:
    if directory is None:
        return Path(tempfile.mkdtemp(prefix="sitesync-demo-"))
    directory = directory.expanduser().absolute()
    if directory.exists() and any(directory.iterdir()):
        if not (directory / MARKER).exists():
            raise InvalidInputError(
                f"{directory} is not empty and was not made by `sitesync demo`; choose an empty or new folder"
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def run_demo(directory: Path | None, frames: int = 120) -> None:
    root = _prepare_dir(directory)
    (root / MARKER).write_text("made by sitesync demo; safe to delete\n")
    home = root / "home"
    studio = root / "studio" / "projects"
    workarea = root / "workarea"
    studio.mkdir(parents=True)
    os.environ["SITESYNC_HOME"] = str(home)  # everything of this demo stays under DIR

    with Client(home=home, db=f"sqlite:///{home / 'data' / 'sitesync.db'}") as c:
        console.print(Rule("sitesync demo", style="bold"))
        console.print(f"studio folder: {root}")
        c.init()
        c.settings_set("local_root", str(root / "local"), local=True)
        c.create_project(PROJECT, {"work": {"any": str(studio)}})
        c.settings_set("active_site", "local", project=PROJECT)
        c.settings_set("remote_site", "studio", project=PROJECT)
        c.settings_set("retry_backoff", 2, project=PROJECT)
        console.print(
            f"project {PROJECT}: studio storage {studio}; this machine is site {c.site_id} (active), studio is remote"
        )

        console.print(Rule("publish"))
        render_dir = studio / PROJECT / "seq010" / "sh010" / "publish" / "render" / "v001" / "exr"
        frame_files = []
        for i in range(frames):
            path = render_dir / f"sh010_renderMain_v001.{1001 + i:04d}.exr"
            _write_random(path, 256 * 1024)
            frame_files.append(str(path))
        render = c.publish(
            PROJECT,
            folder="seq010/sh010",
            product="renderMain",
            version=1,
            name="exr",
            files=frame_files,
            site="studio",
        )
        console.print(
            f"  {render.representation_id}: renderMain v001 exr, {frames} frames rendered on the farm, "
            "registered in place on the studio storage"
        )
        samples = [
            ("seq010/sh010", "animMain", 3, "ma", "sh010_animMain_v003.ma", 2 * 1024 * 1024),
            ("seq010/sh010", "pointcacheMain", 3, "abc", "sh010_pointcacheMain_v003.abc", 48 * 1024 * 1024),
            ("assets/chair", "texturesMain", 1, "tex", "chair_diffuse.1001.tx", 8 * 1024 * 1024),
        ]
        for folder, product, version, name, filename, size in samples:
            path = workarea / filename
            _write_random(path, size)
            result = c.publish(PROJECT, folder=folder, product=product, version=version, name=name, files=[str(path)])
            console.print(
                f"  {result.representation_id}: {product} v{version:03d} {name} ({human_size(size)}) published "
                f"from this machine, queued for upload to studio"
            )

        console.print(Rule("sync: upload the artist's publishes to the studio"))
        report = run_with_progress(c, c.worker(once=True, listen=False), PROJECT)
        _print_report(report, json=False)

        console.print(Rule(f"download the render ({frames} frames) to this machine"))
        c.download(render.representation_id)
        report = run_with_progress(c, c.worker(once=True, listen=False), PROJECT)
        _print_report(report, json=False)

        console.print(Rule("status"))
        _print_project_status(c.status(PROJECT))

        console.print(Rule("where the render is"))
        where = c.whereis(str(render.representation_id))
        assert isinstance(where, RepresentationWhereabouts)  # asked by representation id
        t = table("site", "status", "present", "location")
        for s in where.sites:
            t.add_row(s.site, status_text(s.status), f"{s.present}/{s.files}", s.location or "-")
        console.print(t)

        console.print(Rule())
        console.print("Explore it yourself:")
        console.print(f"  export SITESYNC_HOME={home}")
        console.print(f"  sitesync status {PROJECT}")
        console.print(f"  sitesync status --representation {render.representation_id}")
        console.print(f"  sitesync remove {render.representation_id}      # free the local copy (studio keeps one)")
        console.print(f"  sitesync whereis {render.representation_id}")
