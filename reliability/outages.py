"""Scenario: remote sites go away and come back under a running worker.

A real worker process uploads a publish to an SFTP site (OpenSSH's sshd) and an S3 site (``rclone
serve s3`` over a folder) at once. While files are in flight to both, both servers are killed (SIGKILL,
sessions included), stay down for a few seconds and are started again on the same address, several
times. The worker claims small batches, so both sites' transfers are under way at each outage. Measured for each outage: how long after the server returned the first file
landed on it again (time-to-recover; the target is within 2x the configured first site back-off).
At the end every file must be present and verified on both sites, with no temporary file left.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from tests.remote_servers import new_remote_folder
from tests.servers import rclone_s3_server, ssh_server

from reliability.harness import check_site, make_env, publish_on_studio, start_worker, stop, wait_until
from reliability.scenarios import Result
from sitesync.settings.scopes import split_local_options


def site_outages(
    work: Path,
    *,
    files: int,
    size: int,
    outages: int = 3,
    down_seconds: float = 3.0,
    first_backoff: float = 2.0,
    concurrency: int = 4,
) -> Result:
    """``outages`` outages of both servers at once, ``down_seconds`` each."""
    result = Result(
        "SFTP and S3 servers killed and restarted under a running worker",
        outages,
        f"{outages}x sshd and S3 server killed together, down {down_seconds:.0f}s each",
        files * 2,
    )
    started = time.monotonic()
    with ssh_server() as sshd, rclone_s3_server() as s3:
        env = make_env(work, site_retry_backoff=first_backoff, retry_count=1000)
        worker = None
        try:
            folder = new_remote_folder(sshd)
            bucket = "outages"
            s3.create_bucket(bucket)
            c = env.client
            shared, mine = split_local_options("sftp", sshd.options(base_path=str(folder), connect_timeout=5))
            c.add_site("vendor", "sftp", ["work=/projects"], shared, local_options=mine)  # the key file is local
            c.add_site("cloud", "s3", ["work=/projects"], s3.options(bucket, max_attempts=1, connect_timeout=2))
            c.settings_set("remote_site", "vendor", project=env.project)
            c.settings_set("always_accessible_on", "cloud", project=env.project)
            rep = publish_on_studio(env, files, size)  # queued for vendor and cloud
            worker = start_worker(env, "--concurrency", str(concurrency), "--batch-size", "4", log=work / "worker.log")

            def present(site: str) -> int:
                state = c.store.site_states_of(rep).get(site)
                return int(state["files_present"]) if state else 0

            def first_transfer_after(site: str, moment: float) -> float | None:
                """When the first transfer to ``site`` that started after ``moment`` landed."""
                events = c.store.events(representation_id=rep, kinds=["transfer"], site=site, limit=100_000)
                ends = [e.at for e in events if e.at - (e.duration or 0.0) >= moment]
                return min(ends, default=None)

            recoveries: dict[str, list[float]] = {"vendor": [], "cloud": []}
            for n in range(outages):
                # kill while transfers to both sites are in flight: once two more files landed on each
                marks = {site: present(site) for site in recoveries}
                wait_until(
                    lambda marks=marks: all(present(site) >= min(files, marks[site] + 2) for site in marks),
                    timeout=120,
                    interval=0.01,
                )
                if any(present(site) >= files - 2 for site in recoveries):
                    result.notes.append(f"outage {n + 1} skipped: a site had all its files already")
                    break
                sshd.stop()
                s3.process.stop()  # type: ignore[union-attr]
                time.sleep(down_seconds)
                sshd.start()
                s3.process.start()  # type: ignore[union-attr]
                back = time.time()
                for site, times in recoveries.items():
                    landed = _landed_after(first_transfer_after, site, back, lambda site=site: present(site) >= files)
                    if landed is not None:
                        times.append(landed - back)
                    elif present(site) < files:
                        result.converged = False
                        result.notes.append(f"outage {n + 1}: {site} did not recover within 120s")
            done = wait_until(lambda: present("vendor") == files and present("cloud") == files, timeout=600)
            result.converged &= done
            left = 0
            for site, base in (("vendor", folder / "projects"), ("cloud", s3.data_dir / bucket / "projects")):  # type: ignore[operator]
                final = check_site(env, rep, site, base)
                result.lost += final.lost + (files - final.present)
                result.corrupt += final.corrupt
                result.stuck += final.stuck
                left += final.leftovers
                if final.leftovers:
                    result.converged = False
                    result.notes.append(f"{site}: {final.leftovers} temporary files left")
            target = 2 * first_backoff
            for site, label in (("vendor", "SFTP"), ("cloud", "S3")):
                times = recoveries[site]
                if times:
                    shown = ", ".join(f"{t:.1f}s" for t in times)
                    met = sum(t <= target for t in times)
                    result.notes.append(
                        f"{label}: the first transfer started after each restart landed {shown} after it "
                        f"({met}/{len(times)} within the target {target:.0f}s = 2x the first back-off {first_backoff:.0f}s)"
                    )
            if not left:
                result.notes.append("no temporary file left on either site")
        finally:
            if worker is not None:
                code = stop(worker)
                if code != 0:
                    result.notes.append(f"worker exit code {code}")
            with contextlib.suppress(Exception):
                env.close()
    result.seconds = time.monotonic() - started
    return result


def _landed_after(
    first_transfer_after: Callable[[str, float], float | None],
    site: str,
    moment: float,
    finished: Callable[[], bool],
    timeout: float = 120.0,
) -> float | None:
    """Wait for a transfer to ``site`` that started after ``moment``; when it landed, or None (also
    when the site got everything meanwhile from transfers started before)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        landed = first_transfer_after(site, moment)
        if landed is not None:
            return landed
        if finished():
            return None
        time.sleep(0.05)
    return None


__all__ = ["site_outages"]
