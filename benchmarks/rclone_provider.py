"""The ``rclone`` provider against ``rclone copy`` itself, on the same data, in the same run.

Starts ``rclone serve sftp`` on a loopback port and uploads (1) many small files and (2) one big
file through the provider (4 threads, like a worker) and through ``rclone copy --transfers 4``.
Prints seconds and the provider/rclone ratio. Run: ``.venv/bin/python -m benchmarks.rclone_provider``
(``--small N --small-kib K --big-mib M`` to change the data).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from sitesync.providers.rclone.config import RcloneConfig
from sitesync.providers.rclone.daemon import find_rclone
from sitesync.providers.registry import provider_class


def serve_sftp(rclone: str, directory: Path, cache: Path) -> tuple[subprocess.Popen[bytes], str]:
    args = [rclone, "serve", "sftp", str(directory), "--addr", "127.0.0.1:0", "--config", ""]
    args += ["--cache-dir", str(cache), "--user", "bench", "--pass", "bench"]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert proc.stderr is not None
    for raw in proc.stderr:
        m = re.search(r"listening on (127\.0\.0\.1:\d+)", raw.decode())
        if m:
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, m.group(1)
    raise RuntimeError("rclone serve sftp did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=300)
    parser.add_argument("--small-kib", type=int, default=256)
    parser.add_argument("--big-mib", type=int, default=256)
    opts = parser.parse_args()
    rclone = find_rclone(RcloneConfig(type="local"), "bench")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        src_small, src_big, served = root / "small", root / "big", root / "served"
        for d in (src_small, src_big, served):
            d.mkdir()
        for i in range(opts.small):
            (src_small / f"f.{1001 + i}.exr").write_bytes(os.urandom(opts.small_kib * 1024))
        (src_big / "big.bin").write_bytes(os.urandom(opts.big_mib * 1024 * 1024))
        proc, addr = serve_sftp(rclone, served, root / "cache")
        host, port = addr.split(":")
        options = {
            "type": "sftp",
            "options": {"host": host, "port": int(port), "user": "bench", "shell_type": "none"},
            "secrets": {"pass": "bench"},
        }
        env = dict(os.environ)
        env.update(
            {
                "RCLONE_CONFIG_BENCH_TYPE": "sftp",
                "RCLONE_CONFIG_BENCH_HOST": host,
                "RCLONE_CONFIG_BENCH_PORT": port,
                "RCLONE_CONFIG_BENCH_USER": "bench",
                "RCLONE_CONFIG_BENCH_SHELL_TYPE": "none",
                "RCLONE_CONFIG_BENCH_PASS": subprocess.run(
                    [rclone, "obscure", "bench"], capture_output=True, text=True, check=True
                ).stdout.strip(),
            }
        )
        provider = provider_class("rclone").from_options("bench", options, {"work": "/"})
        try:
            provider.check()

            def upload(path: Path, dest: str) -> None:
                with open(path, "rb") as fh:
                    provider.write(dest, fh, path.stat().st_size, lambda: None)

            rows = []
            for label, files, dest in (
                (f"{opts.small} x {opts.small_kib} KiB", sorted(src_small.iterdir()), "small"),
                (f"1 x {opts.big_mib} MiB", [src_big / "big.bin"], "big"),
            ):
                started = time.monotonic()
                with cf.ThreadPoolExecutor(4) as pool:
                    list(pool.map(lambda p, d=dest: upload(p, f"/provider/{d}/{p.name}"), files))
                ours = time.monotonic() - started
                started = time.monotonic()
                source = src_small if dest == "small" else src_big
                subprocess.run(
                    [rclone, "copy", str(source), f"bench:/rclone/{dest}", "--transfers", "4", "--config", ""],
                    env=env,
                    check=True,
                )
                theirs = time.monotonic() - started
                rows.append((label, ours, theirs))
        finally:
            provider.close()
            proc.terminate()
            proc.wait()
    print(f"{'data':<22} {'provider s':>10} {'rclone copy s':>14} {'ratio':>6}")
    for label, ours, theirs in rows:
        print(f"{label:<22} {ours:>10.2f} {theirs:>14.2f} {ours / theirs:>6.2f}")


if __name__ == "__main__":
    main()
