"""The OpenAPI document against the running application: schemathesis generates requests for
every operation from the spec (valid and invalid ones) and checks that none is answered with a
server error and that answers match the documented status codes, content types and schemas.

Each operation gets three passes: generated requests, generated requests on resources that
exist (so handlers do their real work), and invalid requests. Operations are driven
through schemathesis' strategies inside one test (its pytest fixture integration relies on pytest
internals that moved in pytest 9.2)."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from sitesync.api.app import create_app
from tests.apikit import TOKEN, build_catalog
from tests.conftest import Studio

EXAMPLES = 10
# A well-formed request may still be refused for what it asks (400: e.g. pausing "the worker" and
# a project at once; 409: the min_copies guard; 404: an id that does not exist; 502: a site whose
# storage fails; 422: a settings value its key refuses; 403: a setting only a machine's local
# settings may hold) - those are documented answers, not rejected input.
CONFIG = schemathesis.Config.from_dict(
    {
        # the token is sent by the test itself on every request (its absence is tested elsewhere)
        "generation": {"mode": "all", "with-security-parameters": False},
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ["2xx", "400", "403", "404", "409", "422", "502"]}
        },
        # the login answers a generated (wrong) token with 401 "token refused", as documented
        "operations": [
            {
                "include-path": "/api/v1/auth/session",
                "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "415"]}},
            }
        ],
    }
)


def test_every_operation_conforms_and_never_errors(sqlite_studio: Studio) -> None:
    cat = build_catalog(sqlite_studio)
    sqlite_studio.client.add_site("cloud", "memory", options={"namespace": "cloud", "token": "not-a-real-secret"})
    app = create_app(sqlite_studio.client, token=TOKEN)
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, config=CONFIG)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    # path values that exist, so the second pass reaches each handler's real work with generated
    # queries and bodies (random path values mostly meet a 404)
    existing = {
        "project": st.just("show"),
        "rep_id": st.sampled_from(sorted(cat.reps.values())),
        "name": st.sampled_from(["studio", "local", "cloud"]),
    }
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, [op.label for op in operations]
    passes = [(GenerationMode.POSITIVE, False), (GenerationMode.POSITIVE, True), (GenerationMode.NEGATIVE, False)]
    for operation in operations:
        for mode, pinned in passes:
            try:
                exercise(operation, mode, pinned, existing, headers)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to get wrong in a request without input
            except Exception as exc:  # collect every failing operation, then report them together
                failures[f"{operation.label} ({mode.value}, pinned={pinned})"] = f"{type(exc).__name__}: {exc}"[:3000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def exercise(
    operation: Any, mode: GenerationMode, pinned: bool, existing: dict[str, Any], headers: dict[str, str]
) -> None:
    @given(case=operation.as_strategy(mode), data=st.data())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def run(case: schemathesis.Case, data: st.DataObject) -> None:
        if pinned and case.path_parameters:
            for key in case.path_parameters:
                case.path_parameters[key] = data.draw(existing[key])
        case.call_and_validate(headers=headers)

    run()
