"""How fast the OpenPype representation import registers a catalog, first run and again.

Builds a synthetic OpenPype export (REPS representations of FILES files of SIZE bytes each, every
file on the studio share and queued for a NAS site), then times ``Client.import_representations``
on SQLite: the first run (every file read and hashed, every representation written) and a second
run of the same export (nothing read, nothing written).

    .venv/bin/python -m benchmarks.migration [--reps 2000] [--files 4] [--size 4096]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from sitesync import Client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--size", type=int, default=4096)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        studio, nas = root / "studio", root / "nas"
        lines = []
        for r in range(args.reps):
            files = []
            for f in range(args.files):
                path = f"{{root[work]}}/show/seq{r // 100:03d}/sh{r:05d}/publish/render/v001/f{f}.exr"
                target = studio / path.split("/", 1)[1]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(os.urandom(args.size))
                sites = [{"name": "studio", "created_dt": {"$date": "2023-07-19T14:27:14Z"}}, {"name": "nas"}]
                files.append({"_id": {"$oid": f"{r:012x}{f:012x}"}, "path": path, "size": args.size, "sites": sites})
            context = {
                "hierarchy": f"seq{r // 100:03d}",
                "asset": f"sh{r:05d}",
                "subset": "renderMain",
                "version": 1,
                "representation": "exr",
            }
            lines.append(
                json.dumps(
                    {
                        "_id": {"$oid": f"{r:024x}"},
                        "type": "representation",
                        "name": "exr",
                        "context": context,
                        "files": files,
                    }
                )
            )
        export = "\n".join(lines)
        nas.mkdir()
        os.environ["SITESYNC_SITE_ID"] = "bench-admin"
        with Client(db=f"sqlite:///{root / 'state.db'}", home=root / "home") as client:
            client.init()
            client.create_project("show", [f"work={studio}"])
            client.add_site("nas", "local_drive", [f"work={nas}"])
            client.settings_set("remote_site", "nas", project="show")
            for label in ("first run (hash and register)", "second run (nothing to do)"):
                started = time.perf_counter()
                result = client.import_representations("openpype", export, "show")
                seconds = time.perf_counter() - started
                reps = result["representations"]
                files = args.reps * args.files
                print(
                    f"{label}: {seconds:.2f}s for {args.reps} representations, {files} files "
                    f"({files * args.size / 1e6:.1f} MB, {result['bytes_hashed'] / 1e6:.1f} MB hashed): "
                    f"{args.reps / seconds:.0f} representations/s, {files / seconds:.0f} files/s "
                    f"(created {reps['created']}, unchanged {reps['unchanged']})"
                )


if __name__ == "__main__":
    main()
