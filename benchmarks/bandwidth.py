"""What the shared bandwidth buckets cost: microseconds per accounted chunk.

Every chunk a transfer moves is accounted in three shared buckets (the machine's, the source
site's, the target site's): a thread lock, an ``flock`` on each bucket file, a read and a write of
its memory-mapped record. This times ``Throttle.account`` (three buckets, limits looked up, no
wait: the limit is far above what is accounted) alone, from four threads of one process, and from
two processes at once, and the bare ``SharedBucket.reserve`` of one bucket.

``--sync FILES`` also times whole syncs of FILES files of 4 KiB (studio -> this machine, the real
worker, SQLite) with the buckets and with a stand-in that accounts nothing, alternating the two
over ``--rounds`` rounds (a fresh installation each time, untimed), and prints both medians.

    .venv/bin/python -m benchmarks.bandwidth [--calls 200000] [--sync 5000 --rounds 5]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import threading
import time
from pathlib import Path

from sitesync.engine.bandwidth import BandwidthLimits, MachineBandwidth, SharedBucket
from sitesync.providers.memory import MemoryProvider
from sitesync.settings.timetable import Timetable

FAST = "100G"  # a limit in force that never makes anyone wait


def _machine(folder: Path, limited: bool = True) -> MachineBandwidth:
    limits = BandwidthLimits(Timetable.parse(FAST), {"studio": Timetable.parse(FAST)}) if limited else BandwidthLimits()
    return MachineBandwidth(folder, lambda: limits, "ws-bench")


def _account(folder: Path, calls: int, limited: bool = True) -> float:
    machine = _machine(folder, limited)
    throttle = machine.throttle(
        "studio", "ws-bench", MemoryProvider.from_options("studio", {}), MemoryProvider.from_options("ws", {})
    )
    throttle.account(1)  # open and map the files before timing
    started = time.perf_counter()
    for _ in range(calls):
        throttle.account(1024 * 1024)
    elapsed = time.perf_counter() - started
    machine.close()
    return elapsed


def _process(folder: str, calls: int, out: multiprocessing.Queue) -> None:
    out.put(_account(Path(folder), calls))


class _Unmetered:
    """What a worker would do without the buckets: no accounting at all."""

    def throttle(self, *_args: object, **_kwargs: object) -> None:
        return None

    def close(self) -> None:
        pass


def _sync_once(files: int, metered: bool) -> tuple[float, float]:
    import os
    from unittest import mock

    from benchmarks.sitesync_job import PROJECT, prepare, publish_all
    from sitesync import Client

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / "studio"
        for i in range(files):
            folder = source / f"f{i // 100:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i:06d}.bin").write_bytes(os.urandom(4096))
        env = prepare(root / "home", f"sqlite:///{root / 'state.db'}", source, root / "local")
        with mock.patch.dict(os.environ, env), Client(db=env["SITESYNC_DB"], home=env["SITESYNC_HOME"]) as client:
            publish_all(client, source)
            worker = client.worker(once=True, projects=[PROJECT], listen=False)
            if not metered:
                worker.bandwidth = _Unmetered()  # type: ignore[assignment]
            started, cpu = time.perf_counter(), time.process_time()
            report = worker.run()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            assert report.transferred == files, report
    return elapsed, cpu


def _sync_comparison(files: int, rounds: int) -> None:
    wall: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    _sync_once(min(files, 500), True)  # warm-up: imports, page cache
    for i in range(rounds):
        for metered in (True, False) if i % 2 == 0 else (False, True):
            seconds, used = _sync_once(files, metered)
            wall[metered].append(seconds)
            cpu[metered].append(used)
    print(f"sync of {files} x 4 KiB (studio -> this machine, SQLite), {rounds} rounds each, alternating:")
    for metered, label in ((True, "with the shared buckets"), (False, "without any accounting")):
        rounds_text = ", ".join(f"{t:.2f}" for t in wall[metered])
        print(
            f"  {label:<24} wall median {statistics.median(wall[metered]):6.2f}s, CPU median "
            f"{statistics.median(cpu[metered]):6.2f}s  (wall per round: {rounds_text})"
        )
    extra = statistics.median(cpu[True]) - statistics.median(cpu[False])
    print(
        f"  CPU difference: {extra / statistics.median(cpu[False]) * 100:+.1f}% ({extra / files * 1e6:+.0f} us per file); "
        f"wall: {(statistics.median(wall[True]) / statistics.median(wall[False]) - 1) * 100:+.1f}%"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--sync", type=int, default=0, help="also time whole syncs of this many 4 KiB files")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.sync:
        _sync_comparison(args.sync, args.rounds)
    calls = args.calls
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bucket = SharedBucket(folder / "one")
        bucket.reserve(1, None)
        started = time.perf_counter()
        for _ in range(calls):
            bucket.reserve(1024 * 1024, 1e12)
        one = (time.perf_counter() - started) / calls * 1e6
        bucket.close()

        single = statistics.median(_account(folder, calls) for _ in range(3)) / calls * 1e6
        unlimited = statistics.median(_account(folder, calls, limited=False) for _ in range(3)) / calls * 1e6

        per_thread = calls // 4
        times: list[float] = []
        threads = [threading.Thread(target=lambda: times.append(_account(folder, per_thread))) for _ in range(4)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        threaded = (time.perf_counter() - started) / (per_thread * 4) * 1e6

        queue: multiprocessing.Queue = multiprocessing.Queue()
        per_process = calls // 2
        procs = [multiprocessing.Process(target=_process, args=(tmp, per_process, queue)) for _ in range(2)]
        started = time.perf_counter()
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        processes = (time.perf_counter() - started) / (per_process * 2) * 1e6

    print(f"SharedBucket.reserve, one bucket, one thread:        {one:6.2f} us per call")
    print(f"Throttle.account (3 buckets), one thread:           {single:6.2f} us per chunk")
    print(f"Throttle.account, no limit in force (metered only): {unlimited:6.2f} us per chunk")
    print(f"Throttle.account, 4 threads of one process:         {threaded:6.2f} us per chunk (wall, all threads)")
    print(f"Throttle.account, 2 processes at once:              {processes:6.2f} us per chunk (wall, both processes)")
    print(
        f"under a limit, per 1 MiB chunk that is {single / (1024 * 1024 / 1e3):.4f} us per KB moved; "
        f"a 4 KiB file (one chunk) pays {single:.1f} us limited, {unlimited:.1f} us unlimited"
    )


if __name__ == "__main__":
    main()
