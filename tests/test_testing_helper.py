"""``sitesync.testing.provider_conformance_tests``, as a provider author uses it: a test module of
their own, run by pytest in a subprocess. A good provider passes every contract item, a broken one
fails exactly the items it breaks with their names and what went wrong, declared gaps and
capabilities it has not got are skipped with their reason, and a yielding factory's clean-up runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sitesync.testing import CHECKS, provider_conformance_tests

AUTHOR_TESTS = '''
from pathlib import Path

from sitesync.providers.local_drive import LocalDriveProvider
from sitesync.testing import provider_conformance_tests


class NonAtomic(LocalDriveProvider):
    """Writes straight to the final name: visible before it is complete, kept when refused."""

    def write(self, path, stream, size, commit_check):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            while chunk := stream.read(65536):
                fh.write(chunk)
        commit_check()
        return self.stat(path)


class NoUnicode(LocalDriveProvider):
    conformance_skips = {"names": "the storage cannot hold these names"}


def good(tmp_path):
    return LocalDriveProvider.from_options("good", {}, {"work": str(tmp_path)})


def broken(tmp_path):
    return NonAtomic.from_options("broken", {}, {"work": str(tmp_path)})


def gap(tmp_path):
    return NoUnicode.from_options("gap", {}, {"work": str(tmp_path)}), str(tmp_path)


def switched_off(tmp_path):
    return LocalDriveProvider.from_options("off", {"disable_capabilities": ["local_copy"]}, {"work": str(tmp_path)})


CLOSED = []


def yielding(tmp_path):
    yield LocalDriveProvider.from_options("y", {}, {"work": str(tmp_path)})
    CLOSED.append(True)


test_good = provider_conformance_tests(good)
test_broken = provider_conformance_tests(broken, checks=["write_read_roundtrip", "atomic_visibility", "commit_check_rejects"])
test_gap = provider_conformance_tests(gap, checks=["names"])
test_switched_off = provider_conformance_tests(switched_off, checks=["local_copy"])
test_yielding = provider_conformance_tests(yielding, checks=["reachable"])


def test_z_clean_up_ran():
    assert CLOSED == [True]
'''


def test_an_authors_suite_names_the_contract_items_it_breaks(tmp_path: Path) -> None:
    (tmp_path / "test_my_provider.py").write_text(AUTHOR_TESTS, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}  # the author's own pytest run
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfs", "-p", "no:cacheprovider", "test_my_provider.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    failed = sorted(line.split("[", 1)[1].split("]", 1)[0] for line in out.splitlines() if line.startswith("FAILED"))
    assert failed == ["atomic_visibility", "commit_check_rejects"], out
    assert (
        "NonAtomic breaks the provider contract item 'atomic_visibility' (While a write is streaming, nothing is "
        "visible under the final name.): the file was visible under its final name before the write finished"
    ) in " ".join(out.split()), out
    assert "NoUnicode declares a known gap in 'names': the storage cannot hold these names" in out
    assert "LocalDriveProvider: no local_copy capability (switched off on this site)" in out
    assert f"2 failed, {len(CHECKS) + 1 + 1 + 1} passed, 2 skipped" in out, out


def test_bad_arguments_are_refused_at_once() -> None:
    with pytest.raises(ValueError, match="unknown contract items \\['nope'\\]"):
        provider_conformance_tests(lambda tmp_path: None, checks=["nope"])  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="contract_item"):
        provider_conformance_tests(lambda contract_item: None)  # type: ignore[arg-type,return-value]


def test_every_contract_item_says_what_it_checks() -> None:
    import inspect

    missing = [name for name, check in CHECKS.items() if not inspect.getdoc(check)]
    assert not missing, f"contract items without a docstring (shown when they fail): {missing}"
