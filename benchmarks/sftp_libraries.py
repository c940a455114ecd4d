"""Which SFTP client library should the ``sftp`` provider use? paramiko versus asyncssh, each
driven the way the provider would drive it (synchronous calls from a worker thread, streaming
1 MiB chunks), against a real OpenSSH sshd on loopback, with rclone as a yardstick.

Run from the repository root (asyncssh is not a sitesync dependency; install it to rerun):

    .venv/bin/pip install asyncssh && .venv/bin/python -m benchmarks.sftp_libraries [--quick]

Prints seconds per case (best of the runs) and MiB/s. The machine is shared: numbers are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paramiko
from tests.servers import SshServer, rclone_binary, ssh_server

CHUNK = 1024 * 1024


def paramiko_connect(s: SshServer) -> paramiko.SFTPClient:
    transport = paramiko.Transport(("127.0.0.1", s.port))
    transport.start_client()
    transport.auth_publickey(s.user, paramiko.Ed25519Key.from_private_key_file(str(s.client_key)))
    return paramiko.SFTPClient.from_transport(transport, window_size=2**27 - 1, max_packet_size=2**15)


def paramiko_put(sftp: paramiko.SFTPClient, path: str, data: bytes) -> None:
    with sftp.open(path, "wb") as fh:
        fh.set_pipelined(True)
        view = memoryview(data)
        for off in range(0, len(data), CHUNK):
            fh.write(view[off : off + CHUNK])


def paramiko_get(sftp: paramiko.SFTPClient, path: str, size: int) -> int:
    got = 0
    with sftp.open(path, "rb") as fh:
        fh.prefetch(size)
        while chunk := fh.read(CHUNK):
            got += len(chunk)
    return got


class AsyncsshBridge:
    """asyncssh on an event loop thread, called synchronously like the provider would."""

    def __init__(self, s: SshServer) -> None:
        import asyncssh

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def connect():
            conn = await asyncssh.connect(
                "127.0.0.1", s.port, username=s.user, client_keys=[str(s.client_key)], known_hosts=None
            )
            return conn, await conn.start_sftp_client()

        self.conn, self.sftp = self.call(connect())

    def call(self, awaitable):
        return self.submit(awaitable).result()

    def submit(self, awaitable):
        async def wait():
            return await awaitable

        return asyncio.run_coroutine_threadsafe(wait(), self.loop)

    def put(self, path: str, data: bytes) -> None:
        fh = self.call(self.sftp.open(path, "wb"))
        pending = []
        for off in range(0, len(data), CHUNK):
            pending.append(self.submit(fh.write(data[off : off + CHUNK], off)))
            if len(pending) >= 4:
                pending.pop(0).result()
        for fut in pending:
            fut.result()
        self.call(fh.close())

    def get(self, path: str, size: int) -> int:
        fh = self.call(self.sftp.open(path, "rb"))
        got = 0
        pending = [self.submit(fh.read(CHUNK, off)) for off in range(0, min(size, 4 * CHUNK), CHUNK)]
        next_off = len(pending) * CHUNK
        while pending:
            chunk = pending.pop(0).result()
            got += len(chunk)
            if next_off < size:
                pending.append(self.submit(fh.read(CHUNK, next_off)))
                next_off += CHUNK
        self.call(fh.close())
        return got

    def close(self) -> None:
        self.conn.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


def best(fn: Callable[[], None], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller data, one run")
    args = parser.parse_args()
    big_mib, small_n, runs = (64, 30, 1) if args.quick else (256, 100, 3)
    big = os.urandom(big_mib * CHUNK)
    small = [os.urandom(CHUNK) for _ in range(small_n)]
    with ssh_server() as s:
        base = str(s.base)
        pm = paramiko_connect(s)
        ay = AsyncsshBridge(s)
        rows: list[tuple[str, str, float, int]] = []

        def put_many(put: Callable[[str, bytes], None], tag: str) -> None:
            for i, data in enumerate(small):
                put(f"{base}/{tag}-{i}.bin", data)

        def get_many(get: Callable[[str, int], int], tag: str) -> None:
            for i in range(small_n):
                get(f"{base}/{tag}-{i}.bin", CHUNK)

        rows.append(
            (
                "paramiko",
                f"put 1 x {big_mib} MiB",
                best(lambda: paramiko_put(pm, f"{base}/pm.bin", big), runs),
                len(big),
            )
        )
        rows.append(("asyncssh", f"put 1 x {big_mib} MiB", best(lambda: ay.put(f"{base}/ay.bin", big), runs), len(big)))
        rows.append(
            (
                "paramiko",
                f"get 1 x {big_mib} MiB",
                best(lambda: paramiko_get(pm, f"{base}/pm.bin", len(big)), runs),
                len(big),
            )
        )
        rows.append(
            ("asyncssh", f"get 1 x {big_mib} MiB", best(lambda: ay.get(f"{base}/ay.bin", len(big)), runs), len(big))
        )
        n_bytes = small_n * CHUNK
        rows.append(
            (
                "paramiko",
                f"put {small_n} x 1 MiB",
                best(lambda: put_many(lambda p, d: paramiko_put(pm, p, d), "pm"), runs),
                n_bytes,
            )
        )
        rows.append(("asyncssh", f"put {small_n} x 1 MiB", best(lambda: put_many(ay.put, "ay"), runs), n_bytes))
        rows.append(
            (
                "paramiko",
                f"get {small_n} x 1 MiB",
                best(lambda: get_many(lambda p, n: paramiko_get(pm, p, n), "pm"), runs),
                n_bytes,
            )
        )
        rows.append(("asyncssh", f"get {small_n} x 1 MiB", best(lambda: get_many(ay.get, "ay"), runs), n_bytes))
        pm.close()
        ay.close()

        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "src"
            src.mkdir()
            (src / "big.bin").write_bytes(big)
            env = dict(
                os.environ,
                RCLONE_CONFIG=str(Path(tmp) / "rclone.conf"),
                RCLONE_CONFIG_BENCH_TYPE="sftp",
                RCLONE_CONFIG_BENCH_HOST="127.0.0.1",
                RCLONE_CONFIG_BENCH_PORT=str(s.port),
                RCLONE_CONFIG_BENCH_USER=s.user,
                RCLONE_CONFIG_BENCH_KEY_FILE=str(s.client_key),
                RCLONE_CONFIG_BENCH_KNOWN_HOSTS_FILE=str(s.known_hosts),
            )

            def rclone(*argv: str) -> None:
                # --ignore-times: copy even though an identical file is already there (each run copies)
                subprocess.run([rclone_binary(), *argv, "--ignore-times"], check=True, env=env, capture_output=True)

            rows.append(
                (
                    "rclone",
                    f"put 1 x {big_mib} MiB",
                    best(
                        lambda: rclone(
                            "copyto", str(src / "big.bin"), f"bench:{base}/rc.bin", "--sftp-disable-hashcheck"
                        ),
                        runs,
                    ),
                    len(big),
                )
            )
            rows.append(
                (
                    "rclone",
                    f"get 1 x {big_mib} MiB",
                    best(
                        lambda: rclone(
                            "copyto", f"bench:{base}/rc.bin", str(Path(tmp) / "back.bin"), "--sftp-disable-hashcheck"
                        ),
                        runs,
                    ),
                    len(big),
                )
            )

    print(f"{'library':<10} {'case':<22} {'seconds':>8} {'MiB/s':>8}")
    for lib, case, seconds, nbytes in rows:
        print(f"{lib:<10} {case:<22} {seconds:8.2f} {nbytes / CHUNK / seconds:8.1f}")


if __name__ == "__main__":
    main()
