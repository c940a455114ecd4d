"""``GET /api/v1/metrics``: the state of every project and site, and of this process's worker, in
the Prometheus text format, for dashboards and alerts (Prometheus, Grafana Agent, VictoriaMetrics).
Scrape it with the API token as a bearer token when the server has one. Data from
``Client.metrics``; this module only writes it out (with ``prometheus_client``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from sitesync import __version__
from sitesync.api.app import ApiContext
from sitesync.api.routes.common import AUTH, context, errors

router = APIRouter(tags=["health and control"], dependencies=AUTH)

# the classic text format every Prometheus-compatible scraper reads (the names here are plain ASCII,
# so it is the same text as the newer 1.0.0 format)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Snapshot(Collector):
    """One scrape's data as metric families (a fresh registry per request: nothing global)."""

    def __init__(self, data: dict[str, Any], worker_running: bool) -> None:
        self.data = data
        self.worker_running = worker_running

    def collect(self) -> Iterator[Metric]:
        data = self.data
        info = InfoMetricFamily("sitesync", "This sitesync server.")
        info.add_metric([], {"version": __version__, "site_id": data["site_id"]})
        yield info

        files = GaugeMetricFamily(
            "sitesync_files", "Files of a project per site and status.", labels=["project", "site", "status"]
        )
        present = GaugeMetricFamily(
            "sitesync_present_bytes", "Bytes of verified copies of a project on a site.", labels=["project", "site"]
        )
        for row in data["sites"]:
            for status, count in row["files"].items():
                files.add_metric([row["project"], row["site"], status], count)
            present.add_metric([row["project"], row["site"]], row["bytes_present"])
        yield files
        yield present

        paused = GaugeMetricFamily(
            "sitesync_paused",
            "1 for each pause above representation level (empty project/site: every one).",
            labels=["scope", "project", "site"],
        )
        for pause in data["pauses"]:
            paused.add_metric([pause["scope"], pause["project"] or "", pause["site"] or ""], 1)
        yield paused
        yield GaugeMetricFamily(
            "sitesync_worker_paused", "1 when this machine's workers are paused.", value=int(data["worker_paused"])
        )
        yield GaugeMetricFamily(
            "sitesync_worker_running", "1 when this process runs a worker.", value=int(self.worker_running)
        )

        worker = data["worker"]
        if worker is None:
            return
        yield CounterMetricFamily(
            "sitesync_worker_files_transferred", "Files this worker copied and verified.", worker["files_transferred"]
        )
        yield CounterMetricFamily(
            "sitesync_worker_failed_attempts",
            "Transfer attempts of this worker that failed.",
            worker["failed_attempts"],
        )
        yield CounterMetricFamily(
            "sitesync_worker_transferred_bytes",
            "Bytes of the files this worker copied and verified.",
            worker["bytes_transferred"],
        )
        yield GaugeMetricFamily(
            "sitesync_worker_transfers_running", "Transfers running now.", value=worker["transfers_running"]
        )
        yield GaugeMetricFamily(
            "sitesync_worker_in_flight_bytes",
            "Bytes copied so far by the running transfers.",
            value=worker["bytes_in_flight"],
        )
        yield GaugeMetricFamily(
            "sitesync_worker_start_time_seconds", "When this worker started (Unix time).", value=worker["started_at"]
        )
        unreachable = GaugeMetricFamily(
            "sitesync_site_unreachable",
            "1 for each site this worker could not reach at its last try (retried after a pause).",
            labels=["project", "site"],
        )
        for project, site in data["unreachable"]:
            unreachable.add_metric([project, site], 1)
        yield unreachable


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={**errors(), 200: {"content": {"text/plain": {}}, "description": "Metrics."}},
)
def metrics(ctx: ApiContext = Depends(context)) -> PlainTextResponse:
    """Projects, sites and this process's worker in the Prometheus text format."""
    data = ctx.client.metrics(ctx.snapshot(), ctx.health())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(data, ctx.worker_running))
    return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE)
