"""The OpenAPI schema is the contract: schemathesis checks every operation against a real daphne.

Zero server errors, and every response (status, content type, headers, body)
must be one the schema documents.
"""

from __future__ import annotations

import re

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.inference.api.helpers import bearer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 12
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]


def _operations(url: str):
    loaded = schemathesis.openapi.from_url(f"{url}/api/schema/?format=json", wait_for_schema=10)
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) >= 19, [operation.label for operation in operations]
    return operations


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_keeps_its_documented_contract(live_server_url, celery_worker, owner_key, echo_model, mode):
    failures: dict[str, str] = {}
    for operation in _operations(live_server_url):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,  # the same examples every run: CI stays deterministic
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            case.call_and_validate(base_url=live_server_url, headers=bearer(owner_key), checks=CHECKS, timeout=90)

        try:
            check()
        except Exception as exc:  # keep going: report every operation that breaks its contract
            failures[operation.label] = f"{exc.__class__.__name__}: {exc}"[:3000]
    assert not failures, "\n\n".join(f"{label}\n{problem}" for label, problem in failures.items())


def test_the_docs_page_serves_swagger_ui_from_this_server(live_server_url):
    with httpx.Client(base_url=live_server_url, timeout=30) as client:
        page = client.get("/api/docs/")
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page.text)
        fetched = [client.get(asset) for asset in assets]

    assert page.status_code == 200
    assert "/api/schema/" in page.text
    assert assets, "the page should load Swagger UI's files"
    assert all(asset.startswith("/static/") for asset in assets), assets  # no CDN
    assert [response.status_code for response in fetched] == [200] * len(assets)
