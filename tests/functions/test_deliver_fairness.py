"""The deliver function, fair to every tenant: a delivery's hard deadline, a batch delivered all at once, and a
circuit breaker per endpoint that pauses a failing one with backoff (state in the table, a metric, no effect on
anyone else's deliveries)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from functions.deliver import handler
from shared.repository import schema
from shared.repository.codec import from_attributes, to_attributes
from shared.repository.endpoints import Endpoint
from shared.repository.jobs import JobRepository
from shared.repository.keys import KeyRepository
from shared.runtime import Runtime
from shared.webhooks.breaker import FAILURES_TO_PAUSE, PAUSES_SECONDS
from shared.webhooks.delivery import Deliverer, Handled, QueuedEvent, Result
from shared.webhooks.retry import RETRY_DELAYS_SECONDS
from tests.fixtures.aws import TABLE
from tests.fixtures.cloud import Cloud
from tests.functions.test_deliver_handler import Visibility, queued_event, record_of, run
from tests.support.events import FakeContext
from tests.support.http_server import Received, Reply, serve
from tests.support.trickle import trickling_server

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

# Generous, so that a busy machine never cuts off a receiver that answers at once; the trickling receivers take
# far longer than this to answer.
DEADLINE = 5.0


@pytest.fixture
def visibility(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> Visibility:
    return Visibility(cloud.clients["sqs"], monkeypatch)


@pytest.fixture
def rt(cloud: Cloud, keys: KeyRepository, install_runtime: Callable[[Runtime], Runtime]) -> Runtime:
    """Local mode (receivers on loopback), tenants a and b, a short delivery deadline."""
    keys.ensure_tenant("tenant-a")
    keys.ensure_tenant("tenant-b")
    return install_runtime(cloud.runtime(httpx.Client(), local_mode=True, webhook_deadline_seconds=DEADLINE))


def counted(output: str, name: str) -> float:
    """The sum of metric `name` in the EMF lines the handler printed."""
    total = 0.0
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            value = json.loads(line).get(name)
            if value is not None:
                total += sum(value) if isinstance(value, list) else value
    return total


def breaker_item(cloud: Cloud, tenant: str, url: str) -> dict[str, Any] | None:
    endpoint = Endpoint(tenant, url)
    key = to_attributes({schema.PK: schema.endpoint_pk(tenant, endpoint.url_sha256), schema.SK: schema.ENDPOINT_SK})
    item = cloud.clients["dynamodb"].get_item(TableName=TABLE, Key=key).get("Item")
    return from_attributes(item) if item else None


def end_pause(cloud: Cloud, tenant: str, url: str) -> None:
    """As if the pause had run out."""
    endpoint = Endpoint(tenant, url)
    cloud.clients["dynamodb"].update_item(
        TableName=TABLE,
        Key=to_attributes({schema.PK: schema.endpoint_pk(tenant, endpoint.url_sha256), schema.SK: schema.ENDPOINT_SK}),
        UpdateExpression="SET paused_until = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )


# -- the deadline ---------------------------------------------------------------------------------------------


def test_a_trickling_endpoint_is_cut_off_at_the_deadline_and_retried(
    cloud: Cloud, jobs: JobRepository, rt: Runtime, visibility: Visibility, capsys: pytest.CaptureFixture[str]
) -> None:
    rt.settings = rt.settings.model_copy(update={"webhook_deadline_seconds": 0.5})
    # 47 bytes, one every 0.1 s: each read is quick, the whole answer (a 200) would take 4.7 s.
    with trickling_server(interval=0.1) as trickle:
        message = queued_event(rt, cloud, jobs, f"{trickle.url}/hook")
        capsys.readouterr()
        assert run(record_of(message, attempt=2)) == [message["MessageId"]]
    assert len(trickle.arrived) == 1
    assert trickle.finished == []  # the 200 it was trickling never counted as a delivery
    assert visibility.timeouts == [RETRY_DELAYS_SECONDS[1]]
    output = capsys.readouterr().out
    assert counted(output, "WebhookDeliveriesCutOff") == 1
    assert counted(output, "WebhookDeliveriesFailed") == 1


def test_a_slow_endpoint_in_a_batch_delays_none_of_the_others(
    cloud: Cloud, jobs: JobRepository, rt: Runtime, visibility: Visibility
) -> None:
    """The batch's deliveries run at once: the healthy endpoints have their events while the trickling one is
    still being waited on, and only the trickling one's message stays on the queue."""
    arrived: list[float] = []

    def healthy(request: Received) -> Reply:
        arrived.append(time.monotonic())
        return Reply(204)

    # The slow answer would take 47 x 0.25 = 11.75 s; the deadline cuts it at 5 s.
    with trickling_server(interval=0.25) as trickle, serve(healthy) as receiver:
        slow = queued_event(rt, cloud, jobs, f"{trickle.url}/hook")
        fast = [queued_event(rt, cloud, jobs, f"{receiver.url}/hook/{n}", tenant="tenant-b") for n in range(4)]
        records = [record_of(message) for message in (slow, *fast)]  # the slow one first, as bad luck has it
        assert run(*records) == [slow["MessageId"]]
        for _ in range(200):  # the trickling server notices the hang-up with its next byte
            if trickle.cut_off:
                break
            time.sleep(0.05)
    assert len(arrived) == 4
    assert trickle.cut_off, "the slow delivery was not cut off"
    assert max(arrived) < trickle.cut_off[0]
    [call] = visibility.calls
    assert call["ReceiptHandle"] == slow["ReceiptHandle"]


# -- the circuit breaker ---------------------------------------------------------------------------------------


def failing_then(answers: list[int]) -> Callable[[Received], Reply]:
    replies = iter(answers)
    return lambda request: Reply(next(replies, 200))


def test_consecutive_failures_pause_the_endpoint_with_a_metric(
    cloud: Cloud, jobs: JobRepository, rt: Runtime, visibility: Visibility, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve(lambda request: Reply(503)) as receiver:
        url = f"{receiver.url}/hook"
        messages = [queued_event(rt, cloud, jobs, url) for _ in range(FAILURES_TO_PAUSE + 1)]
        capsys.readouterr()
        for message in messages[:FAILURES_TO_PAUSE]:
            assert run(record_of(message)) == [message["MessageId"]]
        assert len(receiver.received) == FAILURES_TO_PAUSE
        # Paused: the next message is put off without a connection, until the pause ends.
        assert run(record_of(messages[-1])) == [messages[-1]["MessageId"]]
        assert len(receiver.received) == FAILURES_TO_PAUSE

    before_pause, opening, deferred = visibility.timeouts[:-2], visibility.timeouts[-2], visibility.timeouts[-1]
    assert before_pause == [RETRY_DELAYS_SECONDS[0]] * (FAILURES_TO_PAUSE - 1)
    assert opening == PAUSES_SECONDS[0]  # the failure that opened it: held for the whole pause
    assert PAUSES_SECONDS[0] - 5 <= deferred <= PAUSES_SECONDS[0]
    output = capsys.readouterr().out
    assert counted(output, "WebhookEndpointsPaused") == 1
    assert counted(output, "WebhookDeliveriesDeferred") == 1
    assert counted(output, "WebhookDeliveriesFailed") == FAILURES_TO_PAUSE
    state = breaker_item(cloud, "tenant-a", url)
    assert state is not None
    assert (state["entity"], state["tenant_id"], state["url"]) == ("webhook_endpoint", "tenant-a", url)
    assert state["opens"] == 1
    assert state["ttl"] > time.time() + 6 * 86_400  # forgotten a week after the endpoint's last failure
    assert state["last_failure"] == "HTTP 503"


def test_another_tenant_on_the_same_url_is_not_paused(
    cloud: Cloud, jobs: JobRepository, rt: Runtime, visibility: Visibility
) -> None:
    """A hosted webhook service serves many tenants at one URL; one tenant's breaker is its own."""
    with serve(failing_then([503] * FAILURES_TO_PAUSE)) as receiver:
        url = f"{receiver.url}/hook"
        for _ in range(FAILURES_TO_PAUSE):
            message = queued_event(rt, cloud, jobs, url)
            assert run(record_of(message)) == [message["MessageId"]]
        theirs = queued_event(rt, cloud, jobs, url, tenant="tenant-b")
        assert run(record_of(theirs)) == []
        assert len(receiver.received) == FAILURES_TO_PAUSE + 1
    assert breaker_item(cloud, "tenant-b", url) is None


def test_fewer_failures_than_the_threshold_are_forgotten_on_success(
    cloud: Cloud, jobs: JobRepository, rt: Runtime, visibility: Visibility
) -> None:
    with serve(failing_then([500] * (FAILURES_TO_PAUSE - 1))) as receiver:
        url = f"{receiver.url}/hook"
        for _ in range(FAILURES_TO_PAUSE - 1):
            message = queued_event(rt, cloud, jobs, url)
            assert run(record_of(message)) == [message["MessageId"]]
        assert breaker_item(cloud, "tenant-a", url) is not None
        assert run(record_of(queued_event(rt, cloud, jobs, url))) == []
    assert breaker_item(cloud, "tenant-a", url) is None


def test_after_the_pause_one_trial_goes_out_and_its_success_closes_the_breaker(
    cloud: Cloud, jobs: JobRepository, rt: Runtime, visibility: Visibility
) -> None:
    with serve(failing_then([503] * FAILURES_TO_PAUSE)) as receiver:
        url = f"{receiver.url}/hook"
        for _ in range(FAILURES_TO_PAUSE):
            message = queued_event(rt, cloud, jobs, url)
            run(record_of(message))
        end_pause(cloud, "tenant-a", url)
        waiting = [queued_event(rt, cloud, jobs, url) for _ in range(3)]

        # Three messages come back at once: one holds the trial, the other two wait for its verdict.
        left = run(*(record_of(message, attempt=2) for message in waiting))
        assert len(left) == 2
        assert len(receiver.received) == FAILURES_TO_PAUSE + 1
        assert breaker_item(cloud, "tenant-a", url) is None  # closed: the trial succeeded

        again = queued_event(rt, cloud, jobs, url)
        assert run(record_of(again)) == []
    assert len(receiver.received) == FAILURES_TO_PAUSE + 2


def test_a_failed_trial_pauses_the_endpoint_again_for_longer(
    cloud: Cloud, jobs: JobRepository, rt: Runtime, visibility: Visibility
) -> None:
    with serve(lambda request: Reply(500)) as receiver:
        url = f"{receiver.url}/hook"
        for _ in range(FAILURES_TO_PAUSE):
            run(record_of(queued_event(rt, cloud, jobs, url)))
        end_pause(cloud, "tenant-a", url)
        trial = queued_event(rt, cloud, jobs, url)
        assert run(record_of(trial, attempt=3)) == [trial["MessageId"]]
        assert len(receiver.received) == FAILURES_TO_PAUSE + 1
    state = breaker_item(cloud, "tenant-a", url)
    assert state is not None
    assert state["opens"] == 2
    assert PAUSES_SECONDS[1] - 5 <= state["paused_until"] - time.time() <= PAUSES_SECONDS[1]
    assert visibility.timeouts[-1] == max(RETRY_DELAYS_SECONDS[2], PAUSES_SECONDS[1])


def test_a_paused_endpoint_on_its_last_attempt_goes_to_the_dead_letter_queue(
    cloud: Cloud, jobs: JobRepository, rt: Runtime, visibility: Visibility
) -> None:
    with serve(lambda request: Reply(500)) as receiver:
        url = f"{receiver.url}/hook"
        for _ in range(FAILURES_TO_PAUSE):
            run(record_of(queued_event(rt, cloud, jobs, url)))
        last = queued_event(rt, cloud, jobs, url)
        assert run(record_of(last, attempt=8)) == [last["MessageId"]]
        assert len(receiver.received) == FAILURES_TO_PAUSE
    assert visibility.timeouts[-1] == 0


def test_a_delivery_that_cannot_finish_in_the_functions_time_is_left_to_the_queue(
    cloud: Cloud, jobs: JobRepository, rt: Runtime, visibility: Visibility, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backstop: work that stalls past the function's time (say, the table not answering) leaves its message
    to the visibility timeout, and the rest of the batch is answered rather than the whole batch timing out."""
    release, finished = threading.Event(), threading.Event()
    real = Deliverer.for_runtime

    class Stalling:
        def __init__(self, inner: Deliverer) -> None:
            self.inner = inner

        def handle(self, event: QueuedEvent) -> Handled:
            if "stall" not in event.body:
                return self.inner.handle(event)
            release.wait(30)
            finished.set()
            return Handled(Result.DELIVERED)

    monkeypatch.setattr(handler.Deliverer, "for_runtime", lambda runtime: Stalling(real(runtime)))
    monkeypatch.setattr(handler, "ANSWER_SECONDS", 0)
    with serve(lambda request: Reply(204)) as receiver:
        fine = queued_event(rt, cloud, jobs, f"{receiver.url}/hook")
        stalls = queued_event(rt, cloud, jobs, f"{receiver.url}/stall")
        event = {"Records": [record_of(fine), record_of(stalls)]}
        try:
            answer = handler.lambda_handler(event, FakeContext(remaining_ms=1500))
        finally:
            release.set()
            assert finished.wait(30)
    assert answer["batchItemFailures"] == [{"itemIdentifier": stalls["MessageId"]}]
    assert [request.path for request in receiver.received] == ["/hook"]
    assert visibility.calls == []  # left alone: its visibility timeout brings it back
