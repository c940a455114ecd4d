"""A studio to look at the dashboard as a coordinator would: one project with N representations
(default 1,200) published on the studio storage, downloads requested on this machine, some of
them failing (studio copies damaged after publish), some paused, some still moving (a slow
"backup" site reached through the fault-injecting provider), a site that cannot be reached, and
long folder and product names. Everything goes through the real client.

    .venv/bin/python scripts/coordinator_studio.py /tmp/studio --reps 1200
    SITESYNC_HOME=/tmp/studio/home SITESYNC_DB=sqlite:////tmp/studio/home/state.db \\
        SITESYNC_SITE_ID=ws-coordinator SITESYNC_TEST_PROVIDERS=1 .venv/bin/sitesync serve --port 8777

(``SITESYNC_TEST_PROVIDERS=1``: the slow archive site uses the test-only ``faulty`` provider.)
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

SITE_ID = "ws-coordinator"
SEQUENCES = ["seq010", "seq020", "seq030_night_exterior_chase", "seq040"]
PRODUCTS = ["renderMain", "animMain", "cacheMain", "plateMain", "lookdevCharacterHeroMain", "layoutMain"]
NAMES = ["exr", "abc", "ma", "usd", "mov"]


def build(root: Path, reps: int, seed: int = 7) -> dict[str, str]:
    """Create the studio under ``root``; returns the environment to serve it with."""
    os.environ["SITESYNC_SITE_ID"] = SITE_ID
    from sitesync import Client
    from sitesync.testing import enable_test_providers

    enable_test_providers()

    rnd = random.Random(seed)
    home, studio_root, local_root = root / "home", root / "studio", root / "local"
    for path in (home, studio_root, local_root, root / "backup", root / "workarea"):
        path.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{home / 'state.db'}"
    env = {"SITESYNC_HOME": str(home), "SITESYNC_DB": db, "SITESYNC_SITE_ID": SITE_ID, "SITESYNC_TEST_PROVIDERS": "1"}
    client = Client(db=db, home=home)
    client.init()
    client.settings_set("local_root", str(local_root), local=True)
    client.create_project("feature", {"work": {"any": str(studio_root)}})
    client.create_project("commercial", {"work": {"any": str(studio_root / "commercial")}})
    for key, value in {"active_site": "local", "remote_site": "studio", "retry_count": 2, "retry_backoff": 5}.items():
        client.settings_set(key, value, project="feature")
    client.add_site("backup", "local_drive", options={"create_roots": True}, roots=[f"work={root / 'backup'}"])
    # an archive that reads slowly: downloads from it stay in progress for a while
    client.add_site(
        "archive",
        "faulty",
        options={
            "inner": "local_drive",
            "inner_options": {"create_roots": True},
            "slow_read_bytes_per_second": 8192,
            "seed": 1,
        },
        roots=[f"work={root / 'archive'}"],
    )
    client.add_site("vendor_sftp", "local_drive", roots=[f"work={root / 'unmounted-vendor'}"])
    client.settings_set("always_accessible_on", ["backup"], project="feature")
    ids: list[int] = []
    for i in range(reps):
        seq = SEQUENCES[i % len(SEQUENCES)]
        folder = f"{seq}/sh{(i // 6) % 400 * 10:04d}"
        product, name = PRODUCTS[i % len(PRODUCTS)], NAMES[i % len(NAMES)]
        version = 1 + i // (len(SEQUENCES) * 400)
        files = []
        for frame in range(2):
            rel = f"feature/{folder}/{product}/v{version:03d}/{name}/{product}.{1001 + frame}.{name}"
            path = studio_root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(rnd.randint(2_000, 40_000)))
            files.append(str(path))
        result = client.publish(
            "feature", folder=folder, product=product, version=version, name=name, files=files, site="studio"
        )
        ids.append(result.representation_id)
    wanted = ids[: reps // 4]
    for rep in wanted:
        client.download(rep)
    # damaged studio copies: their downloads fail (retry_count 2)
    for rep in wanted[:40]:
        for f in client.store.files_of(rep)[:1]:
            target = studio_root / f.path.split("}/", 1)[1]
            target.write_bytes(os.urandom(target.stat().st_size))
    for rep in wanted[40:60]:
        client.pause(representation=rep)
    # older versions only on the slow archive, wanted here: they move slowly
    for i in range(12):
        files = []
        for frame in range(2):
            path = root / "workarea" / f"arch{i}.{frame}.exr"
            path.write_bytes(os.urandom(rnd.randint(20_000, 60_000)))
            files.append(str(path))
        result = client.publish(
            "feature",
            folder=f"archive/sh{i:04d}",
            product="renderMain",
            version=1,
            name="exr",
            files=files,
            site="archive",
        )
        client.download(result.representation_id)
    # a vendor's storage that is not mounted here: the worker backs off from it
    for rep in ids[-10:]:
        client.upload(rep, "vendor_sftp")
    client.close()
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--reps", type=int, default=1200)
    args = parser.parse_args()
    env = build(args.root, args.reps)
    exports = " ".join(f"{k}={v}" for k, v in env.items())
    print(f"{exports} {sys.executable} -m sitesync serve --port 8777")


if __name__ == "__main__":
    main()
