"""The OpenAPI document against the running application: schemathesis generates requests for
every operation from the spec (valid and invalid ones) and checks that none is answered with a
server error and that answers match the documented status codes, content types and schemas.

Operations are driven through schemathesis' strategies inside one test (its pytest fixture
integration relies on pytest internals that moved in pytest 9.2)."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from sitesync.api.app import create_app
from tests.apikit import TOKEN, build_catalog
from tests.conftest import Studio

EXAMPLES = 15
# A well-formed request may still be refused for what it asks (400: e.g. pausing "the worker" and
# a project at once; 409: the min_copies guard; 404: an id that does not exist; 502: a site whose
# storage fails) - those are documented answers, not rejected input.
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"mode": "all"},
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "404", "409", "502"]}},
    }
)


def test_every_operation_conforms_and_never_errors(sqlite_studio: Studio) -> None:
    build_catalog(sqlite_studio)
    sqlite_studio.client.add_site("cloud", "memory", options={"namespace": "cloud", "token": "not-a-real-secret"})
    app = create_app(sqlite_studio.client, token=TOKEN)
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, config=CONFIG)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, [op.label for op in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers)

        try:
            run()
        except Exception as exc:  # collect every failing operation, then report them together
            failures[operation.label] = f"{type(exc).__name__}: {exc}"[:3000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
