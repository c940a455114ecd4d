"""The reliability scenarios (reliability/scenarios.py) at small sizes: nothing lost, nothing
corrupt, nothing stuck, nothing transferred twice. `reliability/run.py` runs them large."""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability import behind_our_back, scenarios, security
from reliability.harness import ThrowawayPostgres


def assert_ok(result: scenarios.Result) -> None:
    assert result.ok, f"{result.scenario}: {result}"


@pytest.mark.slow
def test_sigkill_at_random_moments(tmp_path: Path) -> None:
    assert_ok(scenarios.sigkill_trials(tmp_path, trials=5, files=1000, size=16 * 1024, seed=11))


def test_transient_and_permanent_faults(tmp_path: Path) -> None:
    result = scenarios.transient_faults(tmp_path, files=300, size=4096)
    assert_ok(result)
    assert any("failed attempts injected" in n and not n.startswith("0 ") for n in result.notes), result.notes


def test_flipped_and_truncated_reads_never_land(tmp_path: Path) -> None:
    assert_ok(scenarios.corrupt_reads(tmp_path, files=200, size=8192))


@pytest.mark.parametrize("name", sorted(behind_our_back.SCENARIOS))
def test_storage_changed_behind_sitesyncs_back(tmp_path: Path, name: str) -> None:
    result = behind_our_back.SCENARIOS[name](tmp_path, files=18, size=4096)
    assert_ok(result)
    assert result.lost == 0 and result.corrupt == 0


def test_disk_full_on_target(tmp_path: Path) -> None:
    assert_ok(scenarios.disk_full(tmp_path))


@pytest.mark.slow
def test_four_workers_one_postgres_queue(tmp_path: Path, pg_database: str) -> None:
    import psycopg

    schema = "rel_four_workers"
    conninfo = pg_database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    assert_ok(
        scenarios.concurrent_workers_pg(
            tmp_path, f"{pg_database}?options=-csearch_path%3D{schema}", workers=4, files=400, size=16 * 1024
        )
    )


@pytest.mark.slow
def test_postgres_restart_mid_run(tmp_path: Path) -> None:
    assert_ok(scenarios.postgres_restart(tmp_path, files=600, size=64 * 1024))


@pytest.mark.slow
def test_sftp_and_s3_servers_killed_and_restarted_under_a_running_worker(tmp_path: Path) -> None:
    from reliability.outages import site_outages

    result = site_outages(tmp_path, files=40, size=2 * 1024 * 1024, outages=1, concurrency=2)
    assert_ok(result)
    assert any(n.startswith("SFTP: the first transfer") for n in result.notes), result.notes
    assert any(n.startswith("S3: the first transfer") for n in result.notes), result.notes


def test_faulty_provider_is_reproducible(tmp_path: Path) -> None:
    from sitesync.errors import StorageError
    from sitesync.providers.faulty import FaultyConfig, FaultyProvider

    def outcomes(seed: int) -> list[bool]:
        root = tmp_path / f"r{seed}"
        root.mkdir(exist_ok=True)
        p = FaultyProvider("f", FaultyConfig(seed=seed, transient_rate=0.5, inner_options={}), {"work": str(root)})
        out = []
        for i in range(40):
            try:
                p.write(str(root / f"x{i % 5}"), __import__("io").BytesIO(b"abc"), 3, lambda: None)
                out.append(True)
            except StorageError:
                out.append(False)
        return out

    assert outcomes(1) == outcomes(1)
    assert outcomes(1) != outcomes(2)
    assert 5 < outcomes(1).count(False) < 35


def test_throwaway_postgres_cluster_starts_and_stops() -> None:
    pg = ThrowawayPostgres()
    try:
        import psycopg

        with psycopg.connect(pg.url.replace("+psycopg", ""), connect_timeout=5) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        pg.destroy()


# ---------------------------------------------------------------------- security (small runs)


@pytest.mark.parametrize(
    "check",
    [
        lambda work: security.program_execution(work, cli_sample=3),
        security.token_guard,
        lambda work: security.secrets_in_logs(work, files=10),
        lambda work: security.bad_input(
            work, rounds=1, cli_sample=5, key_sample=80
        ),  # tests/test_settings_fuzz.py has all
        lambda work: security.hostile_disks(work, writes=2),
    ],
    ids=["programs", "token", "logs", "badinput", "disks"],
)
def test_security_scenarios_hold(tmp_path: Path, check) -> None:
    finding = check(tmp_path)
    assert finding.ok, f"{finding.check}: {finding}"
    assert finding.attempts > 0 and finding.refused > 0
