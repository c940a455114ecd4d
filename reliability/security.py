"""The security scenarios: a hostile local user against real ``sitesync serve`` processes, command
lines, worker logs and file systems. Each returns a ``Finding`` counting attempts, how many were
refused as they must be, how many got through (programs run, secrets seen, requests served without
the token, refused writes that changed something) and how many crashed (tracebacks, 500s).
``reliability/run.py`` runs them large and writes the security table of RELIABILITY.md; the test
suite runs them small (``tests/test_reliability.py``)."""

from __future__ import annotations

import json
import os
import random
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.servers import rclone_serve

from reliability.harness import Env, make_env, publish_on_studio, run_cli, serve_process, stop, wait_until
from sitesync import Client
from sitesync.providers.base import LocalOnly
from sitesync.providers.rclone.config import RcloneConfig
from sitesync.providers.rclone.daemon import find_rclone
from sitesync.providers.registry import builtin_provider_names, provider_class, provider_names_for_tests
from sitesync.settings import models
from sitesync.settings.scopes import REFERENCE_PREFIXES

API = "/api/v1"
# a valid shared definition of a site of each provider
SITES: dict[str, tuple[str, dict[str, Any]]] = {
    "disk": ("local_drive", {}),
    "mem": ("memory", {"namespace": "fuzz"}),
    "rc": ("rclone", {"type": "webdav", "options": {"url": "http://127.0.0.1:9"}}),
    "s3x": ("s3", {"bucket": "fuzz-bucket"}),
    "sftpx": ("sftp", {"host": "127.0.0.1", "user": "u"}),
    "gd": ("gdrive", {"credentials_json": "{}", "folder_id": "f"}),
    "dbx": ("dropbox", {"token": "t"}),
    "flt": ("faulty", {"inner": "memory", "inner_options": {"namespace": "fuzz"}}),
}


@dataclass
class Finding:
    check: str
    attempts: int = 0
    refused: int = 0  # refused as they must be (403/401/422, exit 2 with one line)
    let_through: int = 0  # should have been refused and were not
    crashes: int = 0  # tracebacks, 500s, several lines where one was due
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.let_through or self.crashes)

    def cli(self, proc: subprocess.CompletedProcess[str], *, expect_refusal: bool = True) -> None:
        """Count a command that must be refused with exit 2 and one line."""
        self.attempts += 1
        lines = proc.stderr.strip().splitlines()
        if "Traceback" in proc.stderr or proc.returncode not in (0, 2) or len(lines) > 1:
            self.crashes += 1
            self.notes.append(f"crash: {' '.join(proc.args[2:])[:80]}: {proc.stderr.strip()[-200:]}")
        elif proc.returncode == 2 or not expect_refusal:
            self.refused += 1
        else:
            self.let_through += 1
            self.notes.append(f"accepted: {' '.join(proc.args[2:])[:120]}")


def settings_keys(project_name: str = "rel") -> list[tuple[str, str | None, bool]]:
    """(key, project, local) for every settings key of every layer, with the sites of ``SITES``
    and the project ``project_name`` (``None``: the default project)."""
    keys: list[tuple[str, str | None, bool]] = [("system.enabled", None, False), ("system.sites", None, False)]
    for site, (provider, _) in SITES.items():
        keys.append((f"system.sites.{site}", None, False))
        keys += [(f"system.sites.{site}.{f}", None, False) for f in models.SiteDefinition.model_fields]
        keys.append((f"system.sites.{site}.roots.work", None, False))
        options = list(provider_class(provider).Config.model_fields)
        keys += [(f"system.sites.{site}.options.{o}", None, False) for o in options]
        for project in (None, project_name):
            keys += [(f"sites.{site}.{f}", project, False) for f in models.ProjectSiteSettings.model_fields]
            keys += [(f"sites.{site}.options.{o}", project, False) for o in options]
        keys += [(f"sites.{site}.options.{o}", None, True) for o in options]
    for project in (None, project_name):
        keys += [(f, project, False) for f in models.ProjectSettings.model_fields]
        keys += [("roots.work", project, False), ("sites.local.wants", project, False)]
        keys += [(f, project, True) for f in models.LocalProjectSettings.model_fields]
        keys.append(("roots.local.work", project, True))
    keys += [(f, None, True) for f in ("local_root", "concurrency", "sites")]
    return keys


def define_sites(client: Client, root: Path) -> None:
    """A site of each provider (``SITES``); disk sites get a root below ``root``."""
    for site, (provider, options) in SITES.items():
        client.add_site(site, provider, [f"work={root / site}"] if provider == "local_drive" else [], options)


def _token(env: Env) -> str:
    return (env.home / "config" / "api_token").read_text().strip()


@contextmanager
def _server(env: Env, *args: str) -> Iterator[tuple[str, httpx.Client]]:
    environ = env.environ()
    environ.pop("SITESYNC_TOKEN", None)
    with serve_process(environ, *args) as served:
        headers = {"Authorization": f"Bearer {_token(env)}"} if "--no-token" not in args else {}
        with httpx.Client(base_url=served.base + API, headers=headers, timeout=60) as http:
            yield served.base, http


# ---------------------------------------------------------------------- program execution


def _evil(work: Path) -> tuple[Path, Path]:
    marker = work / "a-program-ran"
    program = work / "evil.sh"
    program.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program, marker


def local_only_cases(program: str) -> list[tuple[str, str, Any]]:
    """(site, option path, value): every local-only declaration of every provider (rclone's table
    option with every backend option name rclone itself lists that the declaration covers), and
    every secret given as a reference."""
    rclone_names = sorted(
        {
            option["Name"]
            for backend in json.loads(
                subprocess.run(
                    [find_rclone(RcloneConfig(type="local"), "x"), "config", "providers"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            for option in backend["Options"]
        }
    )
    site_of = {provider: site for site, (provider, _) in SITES.items()}
    cases = []
    for name in builtin_provider_names() + provider_names_for_tests():
        for field_name, info in provider_class(name).Config.model_fields.items():
            for marker in info.metadata:
                if isinstance(marker, LocalOnly) and marker.keys is None:
                    value = [f"--config={program}"] if "list" in str(info.annotation) else program
                    cases.append((site_of[name], field_name, value))
                elif isinstance(marker, LocalOnly):
                    keys = [k for k in rclone_names if marker.local_only_key(k)] if name == "rclone" else []
                    cases += [(site_of[name], f"{field_name}.{key}", program) for key in keys]
            if "SecretStr" in str(info.annotation):
                sub = ".pass" if "dict" in str(info.annotation) else ""
                cases += [(site_of[name], f"{field_name}{sub}", f"{p}/etc/shadow") for p in REFERENCE_PREFIXES]
    return cases


def program_execution(work: Path, *, cli_sample: int = 20, seed: int = 13) -> Finding:
    """Try to make the service run a program or read a file through settings: every local-only
    option of every provider through the REST API (shared and local layers) and the command line;
    then written straight into the database, with the sites used by checks, tests and a sync."""
    finding = Finding("program execution and file reads through settings (API, CLI, raw database)")
    started = time.monotonic()
    env = make_env(work)
    program, marker = _evil(work)
    try:
        define_sites(env.client, work)
        cases = local_only_cases(str(program))
        with _server(env) as (_base, http):
            for site, option, value in cases:
                for body in (
                    {"key": f"system.sites.{site}.options.{option}", "value": value},
                    {"key": f"sites.{site}.options.{option}", "value": value, "project": "rel"},
                    {"key": f"sites.{site}.options.{option}", "value": value, "local": True},
                ):
                    status = http.put("/settings", json=body).status_code
                    finding.attempts += 1
                    if status == 403:
                        finding.refused += 1
                    elif status >= 500:
                        finding.crashes += 1
                    else:
                        finding.let_through += 1
                        finding.notes.append(f"API accepted {body['key']} ({status})")
            for site, option, value in random.Random(seed).sample(cases, min(cli_sample, len(cases))):
                text = value if isinstance(value, str) else json.dumps(value)
                finding.cli(run_cli(env, "settings", "set", "--", f"system.sites.{site}.options.{option}", text))
            # written straight into the database: the sites are refused, nothing runs
            env.client.add_site("rcl", "rclone", [f"work={work / 'rcl'}"], {"type": "local"})
            env.client.add_site("rsftp", "rclone", ["work=/x"], {"type": "sftp", "options": {"host": "127.0.0.1"}})
            system = env.client.documents().system
            system["sites"]["rcl"]["options"]["rclone"] = str(program)
            system["sites"]["rsftp"]["options"]["options"]["ssh"] = str(program)
            system["sites"]["mem"]["options"]["token"] = "file:/etc/shadow"
            env.client.store.put_settings({"system": system}, "raw-sql")
            env.client.settings_set("always_accessible_on", ["rcl", "rsftp", "mem"], project="rel")
            env.client.publish(env.project, folder="f", product="p", version=1, name="n", files=[str(program)])
            for site in ("rcl", "rsftp", "mem"):
                check = http.post(f"/sites/{site}/check", json={"project": "rel"}).json()
                finding.attempts += 1
                finding.refused += check["available"] is False
                finding.let_through += check["available"] is not False
                finding.cli(run_cli(env, "site", "test", site, "--project", "rel"))
            run_cli(env, "sync", "--once")
        finding.attempts += 1
        if marker.exists():
            finding.let_through += 1
            finding.notes.append("a program named through settings ran")
        else:
            finding.refused += 1
        finding.notes.append(f"{len(cases)} local-only options and references tried on 3 layers")
    finally:
        env.close()
    finding.seconds = time.monotonic() - started
    return finding


# ---------------------------------------------------------------------- the token


def token_guard(work: Path) -> Finding:
    """Every API route and method without the token, with a wrong one, a forged or expired
    session, from another origin or host name; a login link used twice; --no-token off loopback."""
    from sitesync.api.auth import SESSION_COOKIE, session_value

    finding = Finding("API without a valid token, session or origin (every route)")
    started = time.monotonic()
    env = make_env(work)
    try:
        with _server(env) as (base, http), httpx.Client(base_url=base + API, timeout=60) as anonymous:
            spec = anonymous.get("/openapi.json").json()
            public = {"/openapi.json", "/auth/session"}
            routes = [
                (method.upper(), re.sub(r"\{\w+\}", "1", path.removeprefix(API)))
                for path, ops in spec["paths"].items()
                for method in ops
                if path.removeprefix(API) not in public
            ]
            token = _token(env)
            variants: list[tuple[dict[str, str], dict[str, str]]] = [
                ({}, {}),
                ({"Authorization": "Bearer wrong"}, {}),
                ({"Authorization": f"Basic {token}"}, {}),
                ({"Authorization": f"Bearer {token[:-1]}"}, {}),
                ({}, {SESSION_COOKIE: "99999999999.forged"}),
                ({}, {SESSION_COOKIE: session_value("another-token")}),
                ({}, {SESSION_COOKIE: session_value(token, now=0)}),
            ]
            for method, path in routes:
                for headers, cookies in variants:
                    anonymous.cookies = httpx.Cookies(cookies)
                    answer = anonymous.request(method, path, headers=headers, json={} if method != "GET" else None)
                    finding.attempts += 1
                    if answer.status_code == 401:
                        finding.refused += 1
                    elif answer.status_code >= 500:
                        finding.crashes += 1
                    else:
                        finding.let_through += 1
                        finding.notes.append(f"{method} {path} answered {answer.status_code}")
            # with the token: another host name (DNS rebinding) and another origin are refused
            for headers in (
                {"Host": "evil.example"},
                {"Origin": "http://evil.example"},
                {"Sec-Fetch-Site": "cross-site"},
            ):
                answer = http.post("/pause", json={}, headers=headers)
                finding.attempts += 1
                finding.refused += answer.status_code == 403
                finding.let_through += answer.status_code != 403
            link = http.post("/auth/login-links", json={}).json()["url"]
            with httpx.Client(timeout=60) as browser:
                browser.get(link)
                again = httpx.get(link, timeout=60)
                finding.attempts += 1
                finding.refused += "set-cookie" not in again.headers
                finding.let_through += "set-cookie" in again.headers
        finding.cli(run_cli(env, "serve", "--host", "0.0.0.0", "--no-token", "--port", "0"))
        finding.notes.append(f"{len(routes)} routes x {len(variants)} kinds of missing or wrong credentials")
    finally:
        env.close()
    finding.seconds = time.monotonic() - started
    return finding


# ---------------------------------------------------------------------- secrets in logs


def secrets_in_logs(work: Path, *, files: int = 50) -> Finding:
    """A worker at debug level uploads to an S3 endpoint (botocore), a WebDAV server through rclone
    (its own -vv log included) and a memory site, each with secrets; its whole log is scanned for
    every secret value."""
    finding = Finding("secrets in a worker's debug log (s3/botocore, rclone -vv, memory)")
    started = time.monotonic()
    secrets = {
        "s3 key id": "AKIARELIABILITY7F3A9C",
        "s3 secret": "reliability-s3-secret-7f3a9c",
        "webdav password": "reliability-webdav-pass-7f3a9c",
        "memory token": "reliability-memory-token-7f3a9c",
    }
    bucket_dir, dav_dir = work / "s3", work / "dav"
    (bucket_dir / "bucket").mkdir(parents=True)
    dav_dir.mkdir()
    cache = work / "rclone-cache"
    s3, s3_addr = rclone_serve(
        "s3", bucket_dir, cache, ["--auth-key", f"{secrets['s3 key id']},{secrets['s3 secret']}"]
    )
    dav, dav_addr = rclone_serve("webdav", dav_dir, cache, ["--user", "artist", "--pass", secrets["webdav password"]])
    env = make_env(work / "env")
    log = work / "worker.log"
    try:
        c = env.client
        c.add_site(
            "cloud",
            "s3",
            ["work=projects"],
            {
                "bucket": "bucket",
                "endpoint_url": f"http://{s3_addr}",
                "addressing_style": "path",
                "access_key_id": secrets["s3 key id"],
                "secret_access_key": secrets["s3 secret"],
            },
        )
        c.add_site(
            "dav",
            "rclone",
            ["work=/dav"],
            {"type": "webdav"},
            local_options={
                "options": {"url": f"http://{dav_addr}", "vendor": "other", "user": "artist"},
                "secrets": {"pass": "env:RELIABILITY_DAV_PASS"},
                "extra_args": ["-vv"],
            },
        )
        c.add_site("vault", "memory", ["work=/v"], {"namespace": "v", "token": secrets["memory token"]})
        c.settings_set("always_accessible_on", ["cloud", "dav", "vault"], project="rel")
        rep = publish_on_studio(env, files, 4096)
        environ = env.environ()
        environ["RELIABILITY_DAV_PASS"] = secrets["webdav password"]
        with open(log, "wb") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "sitesync", "worker", "--log-level", "debug"],
                env=environ,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            done = wait_until(
                lambda: all(
                    (env.client.store.site_states_of(rep).get(site) or {}).get("files_present") == files
                    for site in ("cloud", "dav", "vault")
                ),
                600,
                0.5,
            )
            stop(worker)
        text = log.read_text(errors="replace")
        finding.attempts = len(text.splitlines())
        leaked = [name for name, value in secrets.items() if value in text]
        finding.let_through = sum(text.count(value) for value in secrets.values())
        finding.refused = text.count("********")
        finding.notes.append(
            f"{finding.attempts} debug log lines; {finding.refused} values masked; leaked: {', '.join(leaked) or 'none'}"
        )
        if not done:
            finding.crashes += 1
            finding.notes.append("the uploads did not complete")
        if "botocore" not in text or "rclone[dav]" not in text:
            finding.crashes += 1
            finding.notes.append("botocore's or rclone's debug log is missing: nothing was really checked")
    finally:
        env.close()
        for proc in (s3, dav):
            proc.terminate()
            proc.wait(timeout=10)
    finding.seconds = time.monotonic() - started
    return finding


# ---------------------------------------------------------------------- generated bad input


# texts that tried every refusal of the settings: paths of each kind, secret references, rules,
# control characters (the generated test draws from them too: tests/test_settings_fuzz.py)
HOSTILE_TEXTS = [
    "relative/path",
    "/abs/path",
    "C:\\x",
    "~/x",
    "env:HOME",
    "file:/etc/passwd",
    "keyring:x",
    "latest and folder:*/sh010",
    "(" * 60 + "latest" + ")" * 60,
    "\x00\n\u2028",
    "unset",
    "local",
    "studio",
    "",
    "not " * 80 + "hero",
    "{root[work]}/{filename}",
]


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 2**63, -(2**70), 10**30, rng.randrange(-1000, 1000)])
    if kind == 3:
        return rng.choice([0.5, -1e300, 1e308, 3.0])
    if kind in (4, 5, 6):
        if rng.random() < 0.2:
            return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(1, 20)))
        return rng.choice(HOSTILE_TEXTS)
    if kind == 7:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {str(_value(rng, depth + 1)): _value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _settings_state(env: Env) -> tuple[dict[str, Any], bytes]:
    _version, docs = env.client.store.settings_documents()
    return {k: v for k, v in docs.items() if v}, (env.home / "config" / "local.toml").read_bytes()


def bad_input(
    work: Path, *, rounds: int, cli_sample: int = 40, key_sample: int | None = None, seed: int = 17
) -> Finding:
    """Generated values for every settings key (or ``key_sample`` of them) through a real server's
    API, ``rounds`` times, and a sample through the command line: success, or a refusal that
    changed nothing."""
    finding = Finding("generated values for every settings key (API, CLI)")
    started = time.monotonic()
    env = make_env(work)
    rng = random.Random(seed)
    keys = settings_keys()
    if key_sample is not None:
        keys = rng.sample(keys, min(key_sample, len(keys)))
    try:
        define_sites(env.client, work)
        baseline = _settings_state(env)

        def restore() -> None:
            now, _ = _settings_state(env)
            env.client.store.put_settings({**{scope: {} for scope in now}, **baseline[0]}, "reliability")
            (env.home / "config" / "local.toml").write_bytes(baseline[1])

        def judge(accepted: bool, crashed: bool, what: str) -> None:
            finding.attempts += 1
            if crashed:
                finding.crashes += 1
                finding.notes.append(f"crash: {what[:160]}")
            elif accepted:
                restore()
            elif _settings_state(env) != baseline:
                finding.let_through += 1  # refused, yet something changed
                finding.notes.append(f"refused but changed: {what[:160]}")
                restore()
            else:
                finding.refused += 1

        with _server(env) as (_base, http):
            for _round in range(rounds):
                for key, project, local in keys:
                    value = _value(rng)
                    answer = http.put(
                        "/settings", json={"key": key, "value": value, "project": project, "local": local}
                    )
                    body = (
                        answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
                    )
                    crashed = answer.status_code >= 500 or (answer.status_code != 200 and "\n" in str(body))
                    judge(answer.status_code == 200, crashed or answer.status_code not in (200, 403, 422), key)
        for key, project, local in rng.sample(keys, min(cli_sample, len(keys))):
            args = ["settings", "set", *(["--project", project] if project else []), *(["--local"] if local else [])]
            proc = run_cli(env, *args, "--", key, json.dumps(_value(rng)))
            lines = proc.stderr.strip().splitlines()
            crashed = "Traceback" in proc.stderr or proc.returncode not in (0, 2) or len(lines) > 1
            judge(proc.returncode == 0, crashed, f"{key}: {proc.stderr.strip()}")
        finding.notes.append(f"{len(keys)} keys x {rounds} rounds through the API, {cli_sample} through the CLI")
    finally:
        env.close()
    finding.seconds = time.monotonic() - started
    return finding


# ---------------------------------------------------------------------- disks


def hostile_disks(work: Path, *, writes: int = 10) -> Finding:
    """SITESYNC_HOME a file, under /proc, on a read-only file system; the SQLite database on a full
    and on a read-only tmpfs: every command answers one line, exit 2, and the database is unchanged."""
    import sqlalchemy as sa

    finding = Finding("unusable homes, SQLite on a full and a read-only disk (real tmpfs)")
    started = time.monotonic()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("SITESYNC_")}

    def cli(home: Path, *args: str, site_id: bool = True) -> subprocess.CompletedProcess[str]:
        environ = {**base_env, "SITESYNC_HOME": str(home), **({"SITESYNC_SITE_ID": "rel-ws"} if site_id else {})}
        return subprocess.run([sys.executable, "-m", "sitesync", *args], env=environ, capture_output=True, text=True)

    a_file = work / "a-file"
    work.mkdir(parents=True, exist_ok=True)
    a_file.write_text("x")
    for home, site_id in ((a_file, True), (Path("/proc/sitesync"), True), (Path("/proc/sitesync"), False)):
        finding.cli(cli(home, "init", site_id=site_id))
    mount = work / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        home = mount / "home"
        db = home / "data" / "sitesync.db"
        cli(home, "init").check_returncode()
        cli(home, "project", "create", "rel", "--root", f"work={work / 'studio'}").check_returncode()

        def snapshot() -> list[Any]:
            engine = sa.create_engine(f"sqlite:///{db}")
            try:
                with engine.connect() as conn:
                    return [conn.execute(sa.text(f"SELECT * FROM {t}")).all() for t in ("settings", "projects")]
            finally:
                engine.dispose()

        before = snapshot()
        subprocess.run(["dd", "if=/dev/zero", f"of={mount / 'fill'}", "bs=64k"], capture_output=True, check=False)
        for i in range(writes):
            finding.cli(cli(home, "settings", "set", "--project", "rel", "retry_count", str(i + 2)))
            finding.cli(cli(home, "project", "create", f"p{i}", "--root", f"work={work / 'x'}"))
        (mount / "fill").unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        for i in range(writes):
            finding.cli(cli(home, "settings", "set", "--project", "rel", "retry_count", str(i + 2)))
        finding.cli(cli(mount / "other-home", "info", site_id=False))
        subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=True)
        finding.attempts += 1
        if snapshot() == before:
            finding.refused += 1
        else:
            finding.let_through += 1
            finding.notes.append("the database changed")
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
    finding.seconds = time.monotonic() - started
    return finding


__all__ = [
    "HOSTILE_TEXTS",
    "SITES",
    "Finding",
    "bad_input",
    "define_sites",
    "hostile_disks",
    "program_execution",
    "secrets_in_logs",
    "settings_keys",
    "token_guard",
]
