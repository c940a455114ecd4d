"""Farm and DCC path mapping: ``sitesync path PATH --to SITE`` (``Client.map_path``, ``GET
/api/v1/path``) from any site's root on any platform, refusals for paths outside every root, and
``--ensure``, which waits until the file is on the site like ``wait``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sitesync.errors import InvalidInputError, NotFoundError, UserError
from tests.apikit import api_client
from tests.conftest import SITE_ID, Studio

REL = "show/seq01/sh010/publish/animMain/v003/ma/anim.ma"


def _published_and_downloaded(studio: Studio) -> int:
    """A scene on the studio share, downloaded to this machine."""
    scene = studio.studio_file(REL, b"scene")
    rep = studio.publish([scene], site="studio")
    studio.client.download(rep)
    studio.sync()
    return rep


def test_local_path_maps_to_the_studio_and_back(studio: Studio) -> None:
    rep = _published_and_downloaded(studio)
    c = studio.client
    local = studio.local_path(REL)
    assert local.exists()
    to_studio = c.map_path(str(local), "studio")
    assert to_studio["mapped"] == str(studio.studio_root / REL)
    assert to_studio["from_site"] == SITE_ID and to_studio["to_site"] == "studio"
    assert to_studio["template"] == f"{{root[work]}}/{REL}"
    assert to_studio["file"]["representation_id"] == rep
    assert to_studio["file"]["status_on_target"] == "present"
    back = c.map_path(str(studio.studio_root / REL), "local")
    assert back["mapped"] == str(local) and back["to_site"] == SITE_ID
    assert c.map_path(str(studio.studio_root / REL))["to_site"] == SITE_ID  # default: the active site
    catalog = c.map_path(f"{{root[work]}}/{REL}", "studio")
    assert catalog["mapped"] == str(studio.studio_root / REL) and catalog["from_site"] is None
    # a file nobody published maps all the same (the farm writes its outputs there)
    out = c.map_path(str(studio.local_path("show/seq01/sh010/render/v001/beauty.####.exr")), "studio")
    assert out["mapped"] == str(studio.studio_root / "show/seq01/sh010/render/v001/beauty.####.exr")
    assert out["file"] is None


def test_windows_roots_map_to_this_platform_and_back(studio: Studio) -> None:
    c = studio.client
    c.settings_set("roots.work", {"linux": str(studio.studio_root), "windows": "P:/projects"}, project="show")
    scene = "P:\\Projects\\show\\seq01\\sh010\\scene.ma"  # as an artist's Windows machine writes it
    result = c.map_path(scene, "studio")
    assert result["from_platform"] == "windows"
    assert result["mapped"] == str(studio.studio_root / "show/seq01/sh010/scene.ma")
    to_windows = c.map_path(str(studio.studio_root / "show/a.ma"), "studio", platform="windows")
    assert to_windows["mapped"] == "P:/projects/show/a.ma" and to_windows["platform"] == "windows"


def test_another_sites_root_and_a_symlinked_mount(studio: Studio, tmp_path: Path) -> None:
    c = studio.client
    c.add_site("cloud", "local_drive", [f"work={studio.root / 'cloud'}"])
    assert c.map_path(str(studio.root / "cloud/show/x.exr"), "studio")["mapped"] == str(
        studio.studio_root / "show/x.exr"
    )
    link = tmp_path / "mnt_link"
    link.symlink_to(studio.studio_root)
    via_link = c.map_path(str(link / "show/y.exr"), "local")
    assert via_link["mapped"] == str(studio.local_path("show/y.exr"))


@pytest.mark.parametrize(
    "bad",
    ["/etc/passwd", "{root[work]}/../etc/passwd", "relative/outside/any/root.ma", "{root[nope]}/x"],
)
def test_paths_outside_every_root_are_refused(studio: Studio, bad: str) -> None:
    with pytest.raises(UserError) as err:
        studio.client.map_path(bad, "studio")
    assert "\n" not in str(err.value)


def test_dotdot_cannot_leave_a_root(studio: Studio) -> None:
    escaping = f"{studio.studio_root}/show/../../outside.ma"
    with pytest.raises(InvalidInputError, match="not under a root"):
        studio.client.map_path(escaping, "local")


def test_ambiguous_projects_need_project(studio: Studio) -> None:
    c = studio.client
    c.add_site("cloud", "local_drive", [f"work={studio.root / 'cloud'}"])
    c.create_project("other", {"work": {"any": str(studio.studio_root)}})
    c.settings_set("sites.cloud.roots.work", str(studio.root / "cloud_other"), project="other")
    path = str(studio.studio_root / "show/z.ma")
    with pytest.raises(InvalidInputError, match="pass --project"):
        c.map_path(path, "cloud")
    assert c.map_path(path, "cloud", project="other")["mapped"] == str(studio.root / "cloud_other/show/z.ma")
    # the same roots give the same answer: no question asked
    assert c.map_path(path, "local")["mapped"] == str(studio.local_path("show/z.ma"))


def test_cli_path_prints_the_mapped_path_and_refuses_in_one_line(studio: Studio) -> None:
    _published_and_downloaded(studio)
    proc = studio.cli("path", str(studio.local_path(REL)), "--to", "studio", check=True)
    assert proc.stdout.strip() == str(studio.studio_root / REL)
    data = json.loads(studio.cli("path", str(studio.local_path(REL)), "--to", "studio", "--json", check=True).stdout)
    assert data["file"]["status_on_target"] == "present"
    outside = studio.cli("path", "/etc/passwd", "--to", "studio")
    assert outside.returncode == 2
    assert outside.stderr.startswith("error: /etc/passwd is not under a root of any site")
    assert outside.stderr.strip().count("\n") == 0
    unknown = studio.cli("path", str(studio.local_path(REL)), "--to", "nowhere")
    assert unknown.returncode == 2 and "nowhere" in unknown.stderr and "Traceback" not in unknown.stderr


def test_ensure_waits_until_the_file_is_on_the_site(studio: Studio) -> None:
    """A farm job's pre-load step: the scene was published on the artist's machine and is still
    queued for the studio; ``path --ensure`` waits while a worker uploads it, then prints the
    studio path (exit 0)."""
    scene = studio.write("scene.ma", b"the scene the farm renders")
    rep = studio.publish([scene])  # on this machine (the active site), queued for studio
    local_copy = next(studio.local_root.rglob("scene.ma"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "sitesync", "path", str(local_copy), "--to", "studio", "--ensure", "--timeout", "120"],
        env=studio.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set() and proc.poll() is None:
            studio.client.sync_once(studio.project)
            stop.wait(0.2)

    worker = threading.Thread(target=work)
    worker.start()
    try:
        out, err = proc.communicate(timeout=150)
    finally:
        stop.set()
        worker.join()
    assert proc.returncode == 0, err
    studio_copy = Path(out.strip())
    assert studio_copy.read_bytes() == b"the scene the farm renders"
    assert studio.client.whereis(str(rep)).to_dict()["sites"]


def test_ensure_times_out_and_refuses_unpublished_paths(studio: Studio) -> None:
    scene = studio.write("late.ma", b"nobody uploads this")
    studio.publish([scene])
    local_copy = next(studio.local_root.rglob("late.ma"))
    proc = studio.cli("path", str(local_copy), "--to", "studio", "--ensure", "--timeout", "0.5", "--interval", "0.1")
    assert proc.returncode == 4, proc.stderr
    assert proc.stdout == ""
    assert "timeout" in proc.stderr
    with pytest.raises(NotFoundError, match="no published file"):
        studio.client.ensure_path(str(studio.local_path("show/nothing_here.ma")), "studio", timeout=0)
    proc = studio.cli("path", str(studio.local_path("show/nothing.ma")), "--to", "studio", "--ensure")
    assert proc.returncode == 2 and "no published file" in proc.stderr


def test_api_maps_paths(studio: Studio) -> None:
    _published_and_downloaded(studio)
    with api_client(studio) as api:
        ok = api.get("/api/v1/path", params={"path": str(studio.local_path(REL)), "to": "studio"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["mapped"] == str(studio.studio_root / REL)
        outside = api.get("/api/v1/path", params={"path": "/etc/passwd", "to": "studio"})
        assert outside.status_code == 400
        assert "not under a root" in outside.json()["detail"]
        assert api.get("/api/v1/path", params={"path": "/x", "platform": "amiga"}).status_code == 422
        assert api.get("/api/v1/path").status_code == 422


def test_mapping_needs_no_file_system_access_to_the_target(studio: Studio) -> None:
    """Mapping is arithmetic on roots: an unmounted target still gets its path (a farm submitter
    maps for machines that mount the share, not for itself)."""
    c = studio.client
    c.add_site("farm_share", "local_drive", [f"work={studio.root / 'not_mounted_here'}"])
    mapped = c.map_path(str(studio.studio_root / "show/a.ma"), "farm_share")["mapped"]
    assert mapped == str(studio.root / "not_mounted_here/show/a.ma")
    assert not os.path.exists(studio.root / "not_mounted_here")


# ---------------------------------------------------------------------- the documented farm scripts

DOCS = Path(__file__).resolve().parents[1] / "docs" / "pipeline-integration.md"


def _doc_block(first_line: str) -> str:
    """The fenced code block of docs/pipeline-integration.md that starts with ``first_line``."""
    text = DOCS.read_text(encoding="utf-8")
    for block in text.split("```")[1::2]:
        body = block.split("\n", 1)[1]
        if body.startswith(first_line):
            return body
    raise AssertionError(f"no code block starting with {first_line!r} in {DOCS}")


def _upload_in_background(studio: Studio, done: threading.Event) -> threading.Thread:
    def work() -> None:
        while not done.is_set():
            studio.client.sync_once(studio.project)
            done.wait(0.2)

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def test_documented_deadline_preload_script(studio: Studio, monkeypatch: pytest.MonkeyPatch) -> None:
    """The JobPreLoad.py in the docs, run with stand-ins for Deadline's job and plugin objects:
    the job's scene moves to the studio copy once the upload is verified."""
    scene = studio.write("shot.ma", b"scene for the farm")
    studio.publish([scene])
    local_copy = str(next(studio.local_root.rglob("shot.ma")))
    for key, value in studio.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SITESYNC_EXE", f"{sys.executable} -m sitesync")
    monkeypatch.setenv("SITESYNC_FARM_TIMEOUT", "120")

    class Job:
        def __init__(self) -> None:
            self.info = {"SceneFile": local_copy, "OutputFilePath": "/renders"}

        def GetJobPluginInfoKeyValue(self, key: str) -> str:
            return self.info.get(key, "")

        def SetJobPluginInfoKeyValue(self, key: str, value: str) -> None:
            self.info[key] = value

    class Plugin:
        def __init__(self) -> None:
            self.job, self.log = Job(), []

        def GetJob(self) -> Job:
            return self.job

        def LogInfo(self, text: str) -> None:
            self.log.append(text)

    saved: list[Job] = []
    namespace = {"RepositoryUtils": type("RepositoryUtils", (), {"SaveJob": staticmethod(saved.append)})}
    exec(compile(_doc_block("# JobPreLoad.py"), "JobPreLoad.py", "exec"), namespace)
    plugin = Plugin()
    done = threading.Event()
    uploader = _upload_in_background(studio, done)
    try:
        namespace["__main__"](plugin)
    finally:
        done.set()
        uploader.join()
    mapped = plugin.job.info["SceneFile"]
    assert Path(mapped).read_bytes() == b"scene for the farm"
    assert str(studio.studio_root) in mapped and saved == [plugin.job]
    assert plugin.log and "sitesync: SceneFile" in plugin.log[0]


def test_documented_farm_wrapper_script(studio: Studio, tmp_path: Path) -> None:
    """The OpenCue wrapper in the docs: maps and waits for its first argument, then runs the
    command with the studio path; a path nobody published fails the frame with exit code 2."""
    wrapper = tmp_path / "sitesync-farm"
    wrapper.write_text(_doc_block("#!/bin/sh"))
    wrapper.chmod(0o755)
    env = {
        **studio.env(),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "SITESYNC_FARM_TIMEOUT": "120",
    }
    scene = studio.write("comp.nk", b"nuke script")
    studio.publish([scene])
    local_copy = str(next(studio.local_root.rglob("comp.nk")))
    done = threading.Event()
    uploader = _upload_in_background(studio, done)
    try:
        proc = subprocess.run([str(wrapper), local_copy, "cat"], env=env, capture_output=True, text=True, timeout=150)
    finally:
        done.set()
        uploader.join()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "nuke script"
    missing = subprocess.run(
        [str(wrapper), str(studio.local_path("show/never.nk")), "cat"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "no published file" in missing.stderr
