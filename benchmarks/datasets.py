"""The data sets: N files of one size spread over F folders, random (incompressible) content.

A data set is generated once under the work folder and reused while its manifest matches.
Layout: ``<workdir>/data/<name>/src/dir0000/file000000.bin`` (one folder level, so each folder can
be published as one representation, like a frame sequence).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.common import human_bytes, parse_size

DEFAULT_SPECS = {
    "small": "10000x4KiB/100",
    "medium": "200x1MiB/1",
    "large": "2x512MiB/1",
}
QUICK_SPECS = {
    "small": "300x4KiB/3",
    "medium": "6x256KiB/1",
    "large": "2x4MiB/1",
}


@dataclass(frozen=True)
class DataSet:
    name: str
    count: int
    size: int
    folders: int

    @classmethod
    def parse(cls, name: str, spec: str) -> DataSet:
        """``COUNTxSIZE[/FOLDERS]``, e.g. ``10000x4KiB/100``."""
        try:
            body, _, folders = spec.partition("/")
            count, _, size = body.lower().partition("x")
            ds = cls(name, int(count), parse_size(size), int(folders or 1))
        except ValueError:
            raise ValueError(
                f"invalid data set {name}={spec!r}: use COUNTxSIZE[/FOLDERS], e.g. 10000x4KiB/100"
            ) from None
        if ds.count < 1 or ds.size < 0 or not 1 <= ds.folders <= ds.count:
            raise ValueError(f"invalid data set {name}={spec!r}: need COUNT >= 1 and 1 <= FOLDERS <= COUNT")
        return ds

    @property
    def total_bytes(self) -> int:
        return self.count * self.size

    def describe(self) -> str:
        return (
            f"{self.count:,} x {human_bytes(self.size)} in {self.folders} folder(s) = {human_bytes(self.total_bytes)}"
        )

    def folder_files(self) -> list[tuple[str, list[str]]]:
        """(folder name, file names) in a stable order; files spread evenly over folders."""
        per, extra = divmod(self.count, self.folders)
        out, n = [], 0
        for d in range(self.folders):
            k = per + (1 if d < extra else 0)
            out.append((f"dir{d:04d}", [f"file{n + i:06d}.bin" for i in range(k)]))
            n += k
        return out


def ensure(ds: DataSet, workdir: Path) -> Path:
    """The source folder of ``ds`` under ``workdir``, generated if missing or different."""
    base = workdir / "data" / ds.name
    src = base / "src"
    manifest = base / "manifest.json"
    want = asdict(ds)
    if manifest.exists() and src.is_dir():
        try:
            if json.loads(manifest.read_text()) == want:
                return src
        except ValueError:
            pass
    if base.exists():
        shutil.rmtree(base)
    src.mkdir(parents=True)
    block = 1 << 20
    for folder, names in ds.folder_files():
        (src / folder).mkdir()
        for name in names:
            with open(src / folder / name, "wb") as fh:
                left = ds.size
                while left > 0:
                    n = min(block, left)
                    fh.write(os.urandom(n))
                    left -= n
    manifest.write_text(json.dumps(want))
    return src
