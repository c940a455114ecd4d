"""GET /api/v1/metrics: Prometheus text that a real Prometheus parser reads, with numbers that agree
with the catalog, and counters of the in-process worker that move when it transfers."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.apikit import api_client, build_catalog
from tests.conftest import SITE_ID, Studio


def samples(http: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = http.get("/api/v1/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def files_in(metrics: dict, project: str, site: str, status: str) -> float:
    return metrics[("sitesync_files", (("project", project), ("site", site), ("status", status)))]


def test_metrics_agree_with_the_catalog(sqlite_studio: Studio) -> None:
    studio = sqlite_studio
    build_catalog(studio)
    studio.client.pause(project="show", site="studio")
    with api_client(studio) as http:
        metrics = samples(http)
    summaries = {s.site: s for s in studio.client.store.project_site_summaries(studio.client.store.project("show").id)}
    for site in ("studio", SITE_ID):
        for status in ("present", "queued", "in_progress", "failed", "removing"):
            assert files_in(metrics, "show", site, status) == summaries[site].counts.get(status, 0), (site, status)
        present = metrics[("sitesync_present_bytes", (("project", "show"), ("site", site)))]
        assert present == summaries[site].bytes_present > 0
    assert files_in(metrics, "show", SITE_ID, "failed") >= 1, "the catalog has a failed download"
    assert metrics[("sitesync_paused", (("project", "show"), ("scope", "project site"), ("site", "studio")))] == 1
    assert metrics[("sitesync_info", (("site_id", SITE_ID), ("version", __import__("sitesync").__version__)))] == 1
    assert metrics[("sitesync_worker_running", ())] == 0
    assert not any(name.startswith("sitesync_worker_files") for name, _ in metrics), "no worker in this process"


def test_worker_counters_move_with_transfers(sqlite_studio: Studio) -> None:
    studio = sqlite_studio
    files = [studio.studio_file(f"show/seq/f.{i}.exr", size=1000 + i) for i in range(2)]
    rep = studio.publish(files, site="studio")  # on the remote site already: nothing queued
    worker = studio.client.worker()
    with api_client(studio, worker=worker) as http:
        before = samples(http)
        assert before[("sitesync_worker_running", ())] == 1
        assert before[("sitesync_worker_files_transferred_total", ())] == 0
        assert before[("sitesync_worker_transferred_bytes_total", ())] == 0
        http.post(f"/api/v1/representations/{rep}/download", json={})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            after = samples(http)
            # the counter moves when a copy is verified; the catalog when the outcome batch is written
            if (
                after[("sitesync_worker_files_transferred_total", ())] >= 2
                and files_in(after, "show", SITE_ID, "present") == 2
            ):
                break
            time.sleep(0.05)
        assert after[("sitesync_worker_files_transferred_total", ())] == 2
        assert after[("sitesync_worker_transferred_bytes_total", ())] == 1000 + 1001
        assert after[("sitesync_worker_failed_attempts_total", ())] == 0
        assert after[("sitesync_worker_start_time_seconds", ())] <= time.time()
        assert files_in(after, "show", SITE_ID, "present") == 2
        assert files_in(after, "show", "studio", "present") == 2
