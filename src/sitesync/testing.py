"""Test helpers for people who write providers (and for sitesync's own tests).

``provider_conformance_tests(factory)`` turns the provider contract suite
(``sitesync.providers.conformance``) into one pytest test per contract item, for a provider author's
own test suite::

    from sitesync.testing import provider_conformance_tests

    def make_provider(tmp_path):            # any pytest fixtures, by parameter name
        return MyProvider.from_options("contract", {...}, {"work": "/scratch"})

    test_conformance = provider_conformance_tests(make_provider)

Each item runs in a fresh scratch folder below the provider's first root (removed afterwards) and
fails with the item's name and what the provider did wrong; items the provider class lists in
``conformance_skips`` (name -> reason), and those of optional capabilities it has not got, are
reported as skipped with the reason.

``enable_test_providers()`` switches on the test-only providers (``memory``: in-process storage;
``faulty``: fault injection around another provider) in this process and in the processes it
starts; they are never offered to users as storage choices.

pytest is imported only when ``provider_conformance_tests`` is called: this module is importable
without it.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable, Generator, Iterable
from typing import Any

from sitesync.providers.base import Provider
from sitesync.providers.conformance import CHECKS, run_conformance
from sitesync.providers.registry import TEST_PROVIDERS_ENV

__all__ = ["CHECKS", "enable_test_providers", "provider_conformance_tests"]

Made = Provider | tuple[Provider, str]


def enable_test_providers() -> None:
    """Let ``memory`` and ``faulty`` resolve here and in every process started from here (they
    read ``SITESYNC_TEST_PROVIDERS=1`` from the environment)."""
    os.environ[TEST_PROVIDERS_ENV] = "1"


def _unpack(made: Made) -> tuple[Provider, str]:
    if isinstance(made, tuple):
        provider, base = made
        return provider, base
    if not made.roots:
        raise TypeError(
            "the factory's provider has no roots: build it with roots, e.g. "
            'Cls.from_options("contract", options, {"work": "/scratch"}), or return (provider, base)'
        )
    return made, next(iter(made.roots.values()))


def provider_conformance_tests(
    factory: Callable[..., Made | Generator[Made, None, None]],
    *,
    checks: Iterable[str] | None = None,
) -> Callable[..., None]:
    """A pytest test function, parametrized over the contract items (``CHECKS``), that runs each
    against a provider made by ``factory``. Assign it to a ``test_`` name in a test module.

    ``factory`` takes pytest fixtures by parameter name (``tmp_path``, your server fixture...) and
    returns (or yields, to clean up afterwards) a provider with at least one root, or a pair
    ``(provider, base)`` naming the base location the scratch folders go below. It is called once
    per item; the provider is closed after each. ``checks``: only these items (default: all).
    """
    import pytest

    names = list(CHECKS) if checks is None else list(checks)
    unknown = sorted(set(names) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown contract items {unknown}; known: {', '.join(CHECKS)}")
    wanted = [p for p in inspect.signature(factory).parameters.values()]
    if any(p.name == "contract_item" for p in wanted):
        raise TypeError("the factory may not take a parameter named contract_item (the test's own)")

    def test_conformance(contract_item: str, **fixtures: Any) -> None:
        with contextlib.ExitStack() as stack:
            returned = factory(**fixtures)
            if isinstance(returned, Generator):
                gen = returned
                made: Made = next(gen)
                stack.callback(lambda: next(gen, None))
            else:
                made = returned
            provider, base = _unpack(made)
            stack.callback(provider.close)
            skips: dict[str, str] = getattr(type(provider), "conformance_skips", {})
            if contract_item in skips:
                pytest.skip(
                    f"{type(provider).__name__} declares a known gap in {contract_item!r}: {skips[contract_item]}"
                )
            [result] = run_conformance(provider, base, only=[contract_item])
            if result.skipped:  # an optional capability the provider has not got
                pytest.skip(f"{type(provider).__name__}: {result.detail}")
            if not result.ok:
                what = (inspect.getdoc(CHECKS[contract_item]) or "").split("\n")[0]
                pytest.fail(
                    f"{type(provider).__name__} breaks the provider contract item {contract_item!r}"
                    + (f" ({what})" if what else "")
                    + f": {result.detail}",
                    pytrace=False,
                )

    params = [inspect.Parameter("contract_item", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY, default=inspect.Parameter.empty) for p in wanted]
    test_conformance.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    test_conformance.__doc__ = f"The provider contract suite against {getattr(factory, '__name__', 'the factory')}."
    return pytest.mark.parametrize("contract_item", names)(test_conformance)
