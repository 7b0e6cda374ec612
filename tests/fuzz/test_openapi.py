"""Generated requests against the local API, from the OpenAPI document it serves (`GET /v1/openapi.json`).

Every operation gets positive and negative cases (schemathesis strategies driven by Hypothesis), once
with a real API key and once without one. Each answer must not be a server error, must use a status
code the document lists for the operation, and must match the documented content type and body schema.
`--fuzz-examples` sets the cases per operation and mode (small in `make test`, large in `make fuzz`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, BaseSchema, GenerationMode, Response
from schemathesis import Case as AnyCase
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from local.system import LocalOptions, LocalSystem, NewKey
from shared.repository.keys import TenantLimits
from tests.support.api_client import TERMINAL, RelayClient

pytestmark = [
    pytest.mark.fuzz,
    pytest.mark.e2e,
    # The stack's own threads (the poller's jitter, moto's ids) draw from `random` while Hypothesis
    # generates a case in this process, which Hypothesis takes for a strategy using `random`.
    pytest.mark.filterwarnings(
        "ignore:Do not use the `random` module inside strategies:hypothesis.errors.HypothesisDeprecationWarning"
    ),
]

Operation = APIOperation[Any, Any, Any, Any]
Case = AnyCase[Operation]

OPERATIONS = [
    ("POST", "/jobs"),
    ("GET", "/jobs"),
    ("GET", "/jobs/{job_id}"),
    ("POST", "/jobs/{job_id}/cancel"),
    ("GET", "/providers"),
    ("GET", "/usage"),
]
PUBLIC = {("GET", "/providers")}
JOB_PATHS = {"/jobs/{job_id}", "/jobs/{job_id}/cancel"}
# These take no input at all, so there is nothing to make invalid.
NO_INPUT = {("GET", "/providers"), ("GET", "/usage")}
CASES = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode.value}")
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (mode is GenerationMode.NEGATIVE and (method, path) in NO_INPUT)
]
URL_FIELDS = ("first_frame_url", "last_frame_url", "webhook_url")
MOTION_URL_FIELDS = ("image_url", "video_url")
RUNNING_JOB_SECONDS = 600.0

CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="module")
def loopback_only() -> Iterator[None]:
    """Name resolution, and so every outbound connection, limited to loopback while the stack runs.

    Generated webhook and frame URLs may name any host (and `confine_urls` cannot parse every string the
    API might accept); the functions run in this process, and their URL guard lets public addresses
    through, so without this a lookup or a connection could leave the machine.
    """
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if not _is_loopback(name.strip("[]").rstrip(".").lower()):
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: not resolved in the fuzz suite (loopback only)")
        return real(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", resolve)
        yield


@pytest.fixture(scope="module")
def stack(loopback_only: None) -> Iterator[LocalSystem]:
    with LocalSystem(LocalOptions(job_seconds=1.0)) as running:
        yield running


@pytest.fixture(scope="module")
def api_key(stack: LocalSystem) -> NewKey:
    # The pro tier, as the other suites' keys: the standard tier's usage plan would throttle the fuzzing itself.
    return stack.create_api_key("fuzz", TenantLimits(tier="pro"))


@pytest.fixture(scope="module")
def api_schema(stack: LocalSystem) -> BaseSchema:
    schema = schemathesis.openapi.from_url(f"{stack.base_url}/openapi.json")
    schema.config.update(base_url=stack.base_url)
    return schema


@pytest.fixture
def job_ids(stack: LocalSystem, api_key: NewKey) -> Iterator[list[str]]:
    """Jobs of the fuzzing tenant still running at their provider, so the job routes also answer 200.

    New ones per test, because a cancel ends them; they are canceled afterwards so no poller lingers.
    """
    assert stack.emulator is not None
    api = RelayClient(stack.base_url, api_key.api_key)
    stack.emulator.set_job_seconds(RUNNING_JOB_SECONDS)
    try:
        ids = [
            api.submit({"provider": provider, "prompt": f"fuzz {provider}"})["id"] for provider in ("kie", "pixwith")
        ]
        for job_id in ids:  # the provider's task is made at dispatch, with the job length set then
            api.wait_dispatched(job_id)
    finally:
        stack.emulator.set_job_seconds(stack.options.job_seconds)
    yield ids
    for job_id in ids:
        if api.get(job_id)["status"] not in TERMINAL:
            api.cancel(job_id)


@pytest.fixture(scope="module")
def statuses() -> Counter[tuple[str, str, str, int]]:
    """(pass, method, path, status) -> answers, to show how deep the generated cases reached."""
    return Counter()


def confine_urls(case: Case, stack: LocalSystem) -> None:
    """Point the host of a generated URL field at the provider emulator, keeping the rest of the URL."""
    assert stack.emulator is not None
    if not isinstance(case.body, dict):
        return
    target = urlsplit(stack.emulator.base_url).netloc
    motion = case.body.get("motion_control")
    holders = [(case.body, URL_FIELDS)]
    if isinstance(motion, dict):
        holders.append((motion, MOTION_URL_FIELDS))
    for holder, fields in holders:
        for field in fields:
            value = holder.get(field)
            if not isinstance(value, str):
                continue
            try:
                parts = urlsplit(value)
                has_host = bool(parts.hostname)
            except ValueError:
                continue
            if has_host:
                holder[field] = urlunsplit(parts._replace(netloc=target))


def validate(case: Case, response: Response, headers: dict[str, str]) -> None:
    case.validate_response(response, checks=[*CHECKS, status_code_conformance], headers=headers)


def fuzz(
    operation: Operation,
    mode: GenerationMode,
    examples: int,
    job_ids: list[str],
    send: Callable[[Case], None],
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=operation.as_strategy(generation_mode=mode), existing=st.none() | st.sampled_from(job_ids))
    def run(case: Case, existing: str | None) -> None:
        # Positive cases name jobs that exist half of the time; negative ones keep their broken ids.
        if mode is GenerationMode.POSITIVE and operation.path in JOB_PATHS and existing is not None:
            case.path_parameters = {**(case.path_parameters or {}), "job_id": existing}
        send(case)

    run()


def test_the_document_lists_exactly_the_fuzzed_operations(api_schema: BaseSchema) -> None:
    paths = api_schema.raw_schema["paths"]
    listed = {(method.upper(), path) for path, operations in paths.items() for method in operations}
    assert listed == set(OPERATIONS)


@pytest.mark.parametrize(
    ("method", "path", "model"),
    [
        ("GET", "/jobs", "JobPage"),
        ("GET", "/jobs/{job_id}", "JobView"),
        ("POST", "/jobs/{job_id}/cancel", "JobView"),
        ("GET", "/usage", "UsageView"),
    ],
)
def test_every_success_answer_is_documented(api_schema: BaseSchema, method: str, path: str, model: str) -> None:
    responses = api_schema.raw_schema["paths"][path][method.lower()]["responses"]
    assert "200" in responses, f"{method} {path} documents only {sorted(responses)}"
    assert model in str(responses["200"])


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_with_an_api_key(
    api_schema: BaseSchema,
    stack: LocalSystem,
    api_key: NewKey,
    job_ids: list[str],
    statuses: Counter[tuple[str, str, str, int]],
    fuzz_examples: int,
    method: str,
    path: str,
    mode: GenerationMode,
) -> None:
    headers = {"Authorization": f"Bearer {api_key.api_key}"}

    def send(case: Case) -> None:
        confine_urls(case, stack)
        response = case.call(headers=headers)
        statuses["key", method, path, response.status_code] += 1
        validate(case, response, headers)

    fuzz(api_schema[path][method], mode, fuzz_examples, job_ids, send)

    answered = {status for (auth, m, p, status) in statuses if (auth, m, p) == ("key", method, path)}
    if mode is GenerationMode.POSITIVE:
        # Valid requests must get past the gateway's and the handler's validation at least once.
        assert answered & {200, 202}, f"{method} {path}: no valid request succeeded: {sorted(answered)}"


@pytest.mark.parametrize("credentials", ["none", "unknown key"])
@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_without_a_valid_api_key(
    api_schema: BaseSchema,
    stack: LocalSystem,
    job_ids: list[str],
    fuzz_examples: int,
    method: str,
    path: str,
    mode: GenerationMode,
    credentials: str,
) -> None:
    headers = {} if credentials == "none" else {"Authorization": "Bearer kr_" + "x" * 43}

    def send(case: Case) -> None:
        confine_urls(case, stack)
        response = case.call(headers=headers)
        validate(case, response, headers)
        if (method, path) not in PUBLIC:
            assert response.status_code == 401, f"{method} {case.formatted_path}: {response.status_code}"

    fuzz(api_schema[path][method], mode, fuzz_examples, job_ids, send)
