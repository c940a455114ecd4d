"""sitesync's ``s3`` and ``sftp`` providers versus ``rclone copy``, same data, same servers, same run.

Cases: 200 x 1 MiB and 1 x 512 MiB (``--quick``: 40 x 1 MiB and 1 x 64 MiB), each uploaded from a
studio folder to the remote site and downloaded back to this machine's site. sitesync runs its
real engine (``Client.sync_once``: claims, verified transfers through the provider, outcomes in
the SQLite catalog, 4 worker threads); rclone runs ``rclone copy`` with its defaults (4 transfers).
Runs alternate which tool goes first, and every timed step starts after ``os.sync()``. Servers,
all on loopback and started here:

* ``rclone_s3``: ``rclone serve s3`` over a local folder (Go, objects as plain files);
* ``sftp``: OpenSSH's sshd. rclone is measured with its default (a remote ``md5sum`` after each
  upload) and with ``--sftp-disable-hashcheck``;
* ``moto_s3`` (only with ``--servers moto_s3``): moto, a Python server, mostly measures itself.

Run from the repository root:

    .venv/bin/python -m benchmarks.remote_providers [--quick] [--runs N] [--servers rclone_s3,sftp] [--only ...]

``--only sitesync,rclone-nohash`` runs just those contenders (a shorter run on a busy machine).

Prints a markdown table of median seconds and the speed ratio (rclone seconds / sitesync seconds:
above 1.00 sitesync is faster). Downloads are also measured with the local site's fsync off
(``sites.local.options.fsync = false``): sitesync's local_drive fsyncs every file it writes before
renaming it into place, rclone does not. The machine may be shared: numbers are noisy.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from tests.servers import moto_server, rclone_binary, rclone_s3_server, ssh_server

from sitesync import Client
from sitesync.settings.scopes import split_local_options

MiB = 1024 * 1024


def make_data(root: Path, n_small: int, big_mib: int) -> None:
    (root / "small").mkdir(parents=True)
    (root / "big").mkdir(parents=True)
    for i in range(n_small):
        (root / "small" / f"f{i:04d}.bin").write_bytes(os.urandom(MiB))
    with open(root / "big" / "big.bin", "wb") as fh:
        for _ in range(big_mib):
            fh.write(os.urandom(MiB))


class Target:
    """One server: how sitesync and rclone reach it, and how to clear a run's files."""

    def __init__(self, name: str, provider: str, options: dict[str, Any], rclone_env: dict[str, str]) -> None:
        self.name = name
        self.provider = provider
        self.options = options
        self.rclone_env = rclone_env
        self.rclone_root = ""  # rclone path prefix below the remote (bucket, or folder)
        self.clear: Callable[[str], None] = lambda run: None


@contextmanager
def s3_target(kind: str) -> Iterator[Target]:
    starter: Callable[[], AbstractContextManager[Any]] = rclone_s3_server if kind == "rclone_s3" else moto_server
    with starter() as server:
        bucket = "bench"
        server.create_bucket(bucket)
        env = {
            "RCLONE_CONFIG_REMOTE_TYPE": "s3",
            "RCLONE_CONFIG_REMOTE_PROVIDER": "Other",
            "RCLONE_CONFIG_REMOTE_ACCESS_KEY_ID": server.access_key,
            "RCLONE_CONFIG_REMOTE_SECRET_ACCESS_KEY": server.secret_key,
            "RCLONE_CONFIG_REMOTE_ENDPOINT": server.endpoint_url,
            "RCLONE_CONFIG_REMOTE_REGION": server.region,
            "RCLONE_CONFIG_REMOTE_FORCE_PATH_STYLE": "true",
        }
        target = Target(kind, "s3", server.options(bucket), env)
        target.rclone_root = f"{bucket}/"
        client = server.boto_client()

        def clear(run: str) -> None:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=run):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
                if keys:
                    client.delete_objects(Bucket=bucket, Delete={"Objects": keys})

        target.clear = clear
        yield target


@contextmanager
def sftp_target() -> Iterator[Target]:
    with ssh_server(shell=True) as server:
        base = server.base
        env = {
            "RCLONE_CONFIG_REMOTE_TYPE": "sftp",
            "RCLONE_CONFIG_REMOTE_HOST": server.host,
            "RCLONE_CONFIG_REMOTE_PORT": str(server.port),
            "RCLONE_CONFIG_REMOTE_USER": server.user,
            "RCLONE_CONFIG_REMOTE_KEY_FILE": str(server.client_key),
            "RCLONE_CONFIG_REMOTE_KNOWN_HOSTS_FILE": str(server.known_hosts),
        }
        target = Target("sftp", "sftp", server.options(base_path=str(base)), env)
        target.rclone_root = f"{base}/"
        target.clear = lambda run: shutil.rmtree(base / run, ignore_errors=True)
        yield target


def timed(fn: Callable[[], Any]) -> float:
    # write back what earlier steps left dirty (the server's copy of the last upload...): a fast
    # step must not hand its disk writeback to the next step, and every step starts equal
    os.sync()
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run_sitesync(
    target: Target, data: Path, work: Path, run: str, fsync: bool = True, transfers: int = 4
) -> dict[str, float]:
    """Upload both sets from a studio folder to the remote site, then download them to this
    machine's site after removing the studio copies (so the remote site is the only source).
    ``fsync=False`` turns off the local site's fsync of each downloaded file (rclone does none)."""
    studio = work / "studio"
    shutil.copytree(data, studio, copy_function=os.link)  # hard links: no bytes copied
    client = Client(db=f"sqlite:///{work / 'state.db'}", home=work / "home")
    times: dict[str, float] = {}
    try:
        client.init()
        client.settings_set("local_root", str(work / "local"), local=True)
        shared, mine = split_local_options(target.provider, target.options)  # key files are this machine's
        client.add_site("remote", target.provider, [f"work=/{run}"], shared, local_options=mine)
        reps = {}
        for case in ("small", "big"):
            client.create_project(case, {"work": {"any": str(studio)}})
            for key, value in {"active_site": "local", "remote_site": "remote", "retry_backoff": 0}.items():
                client.settings_set(key, value, project=case)
            if not fsync:
                client.settings_set("sites.local.options.fsync", False, project=case)
            files = sorted(str(p) for p in (studio / case).iterdir())
            reps[case] = client.publish(
                case, folder=case, product="p", version=1, name="bin", files=files, site="studio"
            ).representation_id
        for case in ("small", "big"):
            times[f"up {case}"] = timed(lambda case=case: _sync(client, case, transfers))
        for case in ("small", "big"):
            client.remove(reps[case], "studio")
            client.download(reps[case])
            times[f"down {case}"] = timed(lambda case=case: _sync(client, case, transfers))
        for case in ("small", "big"):
            status = client.status(representation=reps[case])
            bad = [r for f in status["files"] for r in f["replicas"] if r["status"] != "present"]
            assert not bad, f"sitesync left {case} files unfinished: {bad[:3]}"
    finally:
        client.close()
    return times


def _sync(client: Client, project: str, transfers: int) -> None:
    report = client.sync_once(project, concurrency=transfers)
    assert report.failed_attempts == 0, report.errors


def run_rclone(target: Target, data: Path, work: Path, run: str, extra: list[str]) -> dict[str, float]:
    env = dict(os.environ, RCLONE_CONFIG=str(work / "rclone.conf"), **target.rclone_env)

    def rclone(*argv: str) -> None:
        subprocess.run([rclone_binary(), "copy", *argv, *extra], check=True, env=env, capture_output=True)

    remote = f"remote:{target.rclone_root}{run}"
    times = {}
    for case in ("small", "big"):
        times[f"up {case}"] = timed(lambda case=case: rclone(str(data / case), f"{remote}/{case}"))
    for case in ("small", "big"):
        times[f"down {case}"] = timed(lambda case=case: rclone(f"{remote}/{case}", str(work / "down" / case)))
    return times


CONTENDER_KEYS = {
    "sitesync": "sitesync",
    "sitesync, no local fsync": "nofsync",
    "rclone": "rclone",
    "rclone --sftp-disable-hashcheck": "rclone-nohash",
}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)  # stop the servers and remove the scratch data on kill
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="40 x 1 MiB and 1 x 64 MiB, one run")
    parser.add_argument("--runs", type=int, default=None, help="runs per tool (default 3, quick 1)")
    parser.add_argument("--servers", default="rclone_s3,sftp", help="comma list of rclone_s3, sftp, moto_s3")
    parser.add_argument(
        "--transfers",
        type=int,
        default=4,
        help="files in flight: sitesync's --concurrency and rclone's --transfers (default 4, both tools' default)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma list of the contenders to run, by the first word of their name (sitesync, nofsync, "
        "rclone, rclone-nohash), e.g. sitesync,rclone-nohash; default all",
    )
    args = parser.parse_args()
    n_small, big_mib = (40, 64) if args.quick else (200, 512)
    runs = args.runs or (1 if args.quick else 3)
    transfers = ["--transfers", str(args.transfers)]
    scratch = Path(tempfile.mkdtemp(prefix="sitesync-bench-"))
    rows: list[tuple[str, str, str, float, float]] = []
    try:
        data = scratch / "data"
        make_data(data, n_small, big_mib)
        for server in [s.strip() for s in args.servers.split(",") if s.strip()]:
            starter = sftp_target() if server == "sftp" else s3_target(server)
            with starter as target:
                contenders: dict[str, Callable[[Path, str], dict[str, float]]] = {
                    "sitesync": lambda w, r: run_sitesync(target, data, w, r, transfers=args.transfers),
                    "sitesync, no local fsync": lambda w, r: run_sitesync(
                        target, data, w, r, fsync=False, transfers=args.transfers
                    ),
                    "rclone": lambda w, r: run_rclone(target, data, w, r, transfers),
                }
                if server == "sftp":
                    contenders["rclone --sftp-disable-hashcheck"] = lambda w, r: run_rclone(
                        target, data, w, r, ["--sftp-disable-hashcheck", *transfers]
                    )
                if args.only:
                    wanted = {w.strip() for w in args.only.split(",")}
                    contenders = {n: run for n, run in contenders.items() if CONTENDER_KEYS[n] in wanted}
                results: dict[str, dict[str, list[float]]] = {name: {} for name in contenders}
                order = list(contenders)
                for i in range(runs):
                    for name in order if i % 2 == 0 else order[::-1]:  # alternate who goes first
                        run = f"run{i}-{name.split()[0]}-{len(name)}"
                        work = scratch / run
                        work.mkdir()
                        try:
                            for case, seconds in contenders[name](work, run).items():
                                results[name].setdefault(case, []).append(seconds)
                        finally:
                            shutil.rmtree(work, ignore_errors=True)
                            target.clear(run)
                        print(f"  {server} {name} run {i + 1}: {results[name]}", flush=True)
                for ours_name in [n for n in ("sitesync", "sitesync, no local fsync") if n in contenders]:
                    ours = results[ours_name]
                    for name in [n for n in order if n.startswith("rclone")]:
                        for case, values in results[name].items():
                            if ours_name != "sitesync" and case.startswith("up"):
                                continue  # the local fsync only matters for downloads
                            rows.append(
                                (
                                    server,
                                    f"{ours_name} vs {name}",
                                    case,
                                    statistics.median(ours[case]),
                                    statistics.median(values),
                                )
                            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print()
    print(
        f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"{subprocess.run([rclone_binary(), 'version'], capture_output=True, text=True).stdout.splitlines()[0]} · "
        f"{time.strftime('%Y-%m-%d')} · {n_small} x 1 MiB, 1 x {big_mib} MiB, {args.transfers} transfers, "
        f"median of {runs} runs"
    )
    print()
    print("| server | comparison | case | sitesync s | rclone s | speed vs rclone |")
    print("|---|---|---|---:|---:|---:|")
    for server, name, case, ours_s, theirs_s in rows:
        label = {"small": f"{n_small} x 1 MiB", "big": f"1 x {big_mib} MiB"}[case.split()[1]]
        print(
            f"| {server} | {name} | {case.split()[0]} {label} | {ours_s:.2f} | {theirs_s:.2f} | {theirs_s / ours_s:.2f}x |"
        )


if __name__ == "__main__":
    main()
