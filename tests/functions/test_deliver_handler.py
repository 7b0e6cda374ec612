"""The deliver function: signed webhook POSTs to a real local receiver, retries, 410, dead-lettering, SSRF."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpcore
import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from functions.deliver import handler
from shared.models.common import JobStatus
from shared.models.events import JobEvent, event_from_record
from shared.models.request import JobRequest
from shared.repository.jobs import JobRepository
from shared.repository.keys import KeyRepository
from shared.runtime import USER_AGENT, Runtime
from shared.services.notify import publish
from shared.webhooks.retry import MAX_DELIVERY_ATTEMPTS, MAX_VISIBILITY_SECONDS, RETRY_DELAYS_SECONDS
from tests.fixtures.cloud import Cloud, fake_resolver
from tests.fixtures.jobs import build_job
from tests.support.events import FakeContext, sqs_record
from tests.support.http_server import Received, Reply, serve

# A delivery that is not a failure flushes no metric, and Powertools warns about that.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


class Visibility:
    """ChangeMessageVisibility calls (they still reach moto)."""

    def __init__(self, sqs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[dict[str, Any]] = []
        original = sqs.change_message_visibility

        def change(**kwargs: Any) -> Any:
            self.calls.append(kwargs)
            return original(**kwargs)

        monkeypatch.setattr(sqs, "change_message_visibility", change)

    @property
    def timeouts(self) -> list[int]:
        return [call["VisibilityTimeout"] for call in self.calls]


@pytest.fixture
def visibility(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> Visibility:
    return Visibility(cloud.clients["sqs"], monkeypatch)


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connection the outbound client opens (it still opens them)."""
    opened: list[tuple[str, int]] = []
    original = httpcore.SyncBackend.connect_tcp

    def connect_tcp(self: httpcore.SyncBackend, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        opened.append((host, port))
        return original(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect_tcp)
    return opened


@pytest.fixture
def local_rt(cloud: Cloud, keys: KeyRepository, install_runtime: Callable[[Runtime], Runtime]) -> Runtime:
    """Local mode (the receiver is on loopback), with tenants a and b on record."""
    keys.ensure_tenant("tenant-a")
    keys.ensure_tenant("tenant-b")
    return install_runtime(cloud.runtime(httpx.Client(), local_mode=True))


@pytest.fixture
def public_rt(cloud: Cloud, keys: KeyRepository, install_runtime: Callable[[Runtime], Runtime]) -> Runtime:
    """As deployed: loopback is refused like any other non-public address."""
    keys.ensure_tenant("tenant-a")
    return install_runtime(cloud.runtime(httpx.Client()))


def queued_event(
    rt: Runtime, cloud: Cloud, jobs: JobRepository, webhook_url: str, *, tenant: str = "tenant-a"
) -> dict[str, Any]:
    """A job.queued event published the way notify does; the message as the webhook queue holds it."""
    job = jobs.create(build_job(tenant_id=tenant, request=JobRequest(prompt="a red fox", webhook_url=webhook_url))).job
    job = jobs.transition(job, JobStatus.QUEUED, provider_task_id=f"task-{job.id}")
    publish(rt, event_from_record(job), job)
    [message] = cloud.messages()
    return message


def record_of(message: dict[str, Any], attempt: int = 1) -> dict[str, Any]:
    """The SQS event record Lambda would pass for `message` on its `attempt`-th receive."""
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    record = sqs_record(message["Body"], attributes, receive_count=attempt, message_id=message["MessageId"])
    record["receiptHandle"] = message["ReceiptHandle"]
    return record


def run(*records: dict[str, Any]) -> list[str]:
    """Invoke the handler; the message ids left on the queue for another attempt (even all of them is an answer,
    not a function error)."""
    result = handler.lambda_handler({"Records": list(records)}, FakeContext())
    return [failure["itemIdentifier"] for failure in result["batchItemFailures"]]


def secret(rt: Runtime, tenant: str, version: int = 1) -> str:
    return rt.signing_keys().tenant_webhook_secret(tenant, version)


def ok(request: Received) -> Reply:
    return Reply(204)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- delivery and signatures ----------------------------------------------------------------------------


def test_the_event_is_posted_signed_with_the_tenants_secret(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, visibility: Visibility
) -> None:
    with serve(ok) as receiver:
        message = queued_event(local_rt, cloud, jobs, f"{receiver.url}/hooks/kling?source=relay")
        assert run(record_of(message)) == []
    [request] = receiver.received
    event = JobEvent.model_validate_json(message["Body"])
    assert request.method == "POST"
    assert request.path == "/hooks/kling?source=relay"
    assert request.body == message["Body"].encode()
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == USER_AGENT
    assert headers["webhook-id"] == event.id
    assert headers["webhook-signature"].startswith("v1,")
    verified = Webhook(secret(local_rt, "tenant-a")).verify(request.body, request.headers)
    assert verified == json.loads(message["Body"])
    assert verified["type"] == "job.queued"
    assert visibility.calls == []


def test_the_signature_fails_with_another_tenants_secret(cloud: Cloud, jobs: JobRepository, local_rt: Runtime) -> None:
    with serve(ok) as receiver:
        message = queued_event(local_rt, cloud, jobs, f"{receiver.url}/hook")
        assert run(record_of(message)) == []
    [request] = receiver.received
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret(local_rt, "tenant-b")).verify(request.body, request.headers)
    tampered = request.body.replace(b"job.queued", b"job.running")
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret(local_rt, "tenant-a")).verify(tampered, request.headers)


def test_after_rotation_deliveries_are_signed_with_the_new_secret_only(
    cloud: Cloud, jobs: JobRepository, keys: KeyRepository, local_rt: Runtime
) -> None:
    with serve(ok) as receiver:
        before = queued_event(local_rt, cloud, jobs, f"{receiver.url}/hook")
        assert run(record_of(before)) == []
        assert keys.rotate_webhook_secret("tenant-a").webhook_secret_version == 2
        after = queued_event(local_rt, cloud, jobs, f"{receiver.url}/hook")
        assert run(record_of(after)) == []
    old, new = receiver.received
    Webhook(secret(local_rt, "tenant-a", 1)).verify(old.body, old.headers)
    Webhook(secret(local_rt, "tenant-a", 2)).verify(new.body, new.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret(local_rt, "tenant-a", 2)).verify(old.body, old.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret(local_rt, "tenant-a", 1)).verify(new.body, new.headers)


def test_the_webhook_id_is_the_same_on_every_attempt(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, visibility: Visibility
) -> None:
    answers = iter([Reply(503), Reply(500), Reply(200, b"ok")])
    with serve(lambda request: next(answers)) as receiver:
        message = queued_event(local_rt, cloud, jobs, f"{receiver.url}/hook")
        assert run(record_of(message, attempt=1)) == [message["MessageId"]]
        assert run(record_of(message, attempt=2)) == [message["MessageId"]]
        assert run(record_of(message, attempt=3)) == []
    event_id = JobEvent.model_validate_json(message["Body"]).id
    assert [r.headers["webhook-id"] for r in receiver.received] == [event_id] * 3
    assert {r.body for r in receiver.received} == {message["Body"].encode()}
    for request in receiver.received:
        Webhook(secret(local_rt, "tenant-a")).verify(request.body, request.headers)
    assert visibility.timeouts == [RETRY_DELAYS_SECONDS[0], RETRY_DELAYS_SECONDS[1]]


# -- retries --------------------------------------------------------------------------------------------


FAILED_REPLIES = [
    Reply(500),
    Reply(502, b"bad gateway"),
    Reply(503),
    Reply(429),
    Reply(400, b"bad request"),
    Reply(301, b"", {"Location": "https://hooks.example.com/moved"}),
    Reply(307, b"", {"Location": "/elsewhere"}),
]
assert len(FAILED_REPLIES) == MAX_DELIVERY_ATTEMPTS - 1  # one kind of failure on each retryable attempt


@pytest.mark.parametrize(
    ("attempt", "reply"),
    list(enumerate(FAILED_REPLIES, start=1)),
    ids=[f"attempt{n}-{reply.status}" for n, reply in enumerate(FAILED_REPLIES, start=1)],
)
def test_a_failed_attempt_is_retried_after_the_scheduled_delay(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, visibility: Visibility, reply: Reply, attempt: int
) -> None:
    with serve(lambda request: reply) as receiver:
        message = queued_event(local_rt, cloud, jobs, f"{receiver.url}/hook")
        assert run(record_of(message, attempt)) == [message["MessageId"]]
        assert [r.path for r in receiver.received] == ["/hook"]  # redirects are not followed
    [call] = visibility.calls
    assert call["VisibilityTimeout"] == RETRY_DELAYS_SECONDS[attempt - 1]
    assert call["ReceiptHandle"] == message["ReceiptHandle"]
    assert call["QueueUrl"] == cloud.queue_url


@pytest.mark.parametrize("attempt", [1, 4, MAX_DELIVERY_ATTEMPTS - 1])
def test_a_refused_connection_is_retried_after_the_scheduled_delay(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, visibility: Visibility, attempt: int
) -> None:
    message = queued_event(local_rt, cloud, jobs, f"http://127.0.0.1:{closed_port()}/hook")
    assert run(record_of(message, attempt)) == [message["MessageId"]]
    assert visibility.timeouts == [RETRY_DELAYS_SECONDS[attempt - 1]]


def test_a_receiver_that_does_not_answer_in_time_is_retried(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, visibility: Visibility
) -> None:
    local_rt.settings = local_rt.settings.model_copy(update={"webhook_deadline_seconds": 0.3})
    release = threading.Event()

    def hangs(request: Received) -> Reply:
        release.wait(5)
        return Reply(200)

    with serve(hangs) as receiver:
        message = queued_event(local_rt, cloud, jobs, f"{receiver.url}/hook")
        try:
            assert run(record_of(message, attempt=3)) == [message["MessageId"]]
        finally:
            release.set()
    assert visibility.timeouts == [RETRY_DELAYS_SECONDS[2]]


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        (1, "600", 600),  # longer than the schedule's 5 s: the receiver's wish wins
        (4, "60", RETRY_DELAYS_SECONDS[3]),  # shorter than the schedule: the schedule wins
        (1, "100000", MAX_VISIBILITY_SECONDS),  # capped at SQS's 12 h visibility ceiling
        (1, "Wed, 21 Oct 2015 07:28:00 GMT", RETRY_DELAYS_SECONDS[0]),  # a date already past
        (2, "soon", RETRY_DELAYS_SECONDS[1]),
        (2, "\u00b2", RETRY_DELAYS_SECONDS[1]),  # a superscript two: no advice, and no crash
    ],
)
def test_retry_after_is_honoured_up_to_the_cap(
    cloud: Cloud,
    jobs: JobRepository,
    local_rt: Runtime,
    visibility: Visibility,
    attempt: int,
    retry_after: str,
    expected: int,
) -> None:
    with serve(lambda request: Reply(429, b"slow down", {"Retry-After": retry_after})) as receiver:
        message = queued_event(local_rt, cloud, jobs, f"{receiver.url}/hook")
        assert run(record_of(message, attempt)) == [message["MessageId"]]
    assert visibility.timeouts == [expected]


@pytest.mark.parametrize("failure", ["http_500", "refused"])
def test_the_last_attempt_makes_the_message_visible_at_once_for_the_dead_letter_queue(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, visibility: Visibility, failure: str
) -> None:
    with serve(lambda request: Reply(500)) as receiver:
        url = f"{receiver.url}/hook" if failure == "http_500" else f"http://127.0.0.1:{closed_port()}/hook"
        message = queued_event(local_rt, cloud, jobs, url)
        assert run(record_of(message, MAX_DELIVERY_ATTEMPTS)) == [message["MessageId"]]
        assert run(record_of(message, MAX_DELIVERY_ATTEMPTS + 1)) == [message["MessageId"]]
    assert visibility.timeouts == [0, 0]


def test_410_gone_is_final_and_not_retried(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, visibility: Visibility, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve(lambda request: Reply(410, b"unsubscribed")) as receiver:
        message = queued_event(local_rt, cloud, jobs, f"{receiver.url}/hook")
        capsys.readouterr()
        assert run(record_of(message)) == []
        assert len(receiver.received) == 1
    assert visibility.calls == []
    assert '"WebhookDeliveriesDropped":[1.0]' in capsys.readouterr().out


def test_one_failing_record_in_a_batch_is_the_only_one_reported(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, visibility: Visibility
) -> None:
    def script(request: Received) -> Reply:
        return Reply(500) if request.path == "/broken" else Reply(200)

    with serve(script) as receiver:
        messages = [
            queued_event(local_rt, cloud, jobs, f"{receiver.url}/{path}") for path in ("first", "broken", "third")
        ]
        records = [record_of(message, attempt=2) for message in messages]
        assert run(*records) == [messages[1]["MessageId"]]
        assert sorted(r.path for r in receiver.received) == ["/broken", "/first", "/third"]
    [call] = visibility.calls
    assert call["ReceiptHandle"] == messages[1]["ReceiptHandle"]
    assert call["VisibilityTimeout"] == RETRY_DELAYS_SECONDS[1]


def test_the_receivers_answer_body_is_not_read(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, visibility: Visibility
) -> None:
    with endless_answer_server() as (url, sent):
        message = queued_event(local_rt, cloud, jobs, f"{url}/hook")
        assert run(record_of(message)) == []
    assert visibility.calls == []
    assert sent[0] < 32 * 1024 * 1024  # of the 1 GiB on offer: the status is all a delivery needs


@contextmanager
def endless_answer_server() -> Iterator[tuple[str, list[int]]]:
    """Answers one POST with 200 and a 1 GiB chunked body; `sent` counts the bytes written before it stopped."""
    sent = [0]
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.settimeout(10)
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(65536)
            head, _, body = request.partition(b"\r\n\r\n")
            length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))[15:])
            while len(body) < length:
                body += connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
            try:
                for _ in range(16384):
                    connection.sendall(chunk)
                    sent[0] += len(chunk)
            except OSError:
                return  # the client hung up without reading: what a delivery should do

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", sent
    finally:
        thread.join(timeout=30)
        listener.close()
    assert not thread.is_alive()


# -- refused targets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "webhook_url",
    [
        "https://10.0.0.5/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/latest/meta-data/",
        "https://[::1]/hook",
        "https://localhost/hook",
        "http://hooks.example.com/hook",
        "https://unknown.example.org/hook",
    ],
)
def test_a_webhook_url_that_is_not_public_https_is_dropped_without_a_connection(
    cloud: Cloud,
    jobs: JobRepository,
    public_rt: Runtime,
    visibility: Visibility,
    connections: list[tuple[str, int]],
    capsys: pytest.CaptureFixture[str],
    webhook_url: str,
) -> None:
    message = queued_event(public_rt, cloud, jobs, webhook_url)
    capsys.readouterr()
    assert run(record_of(message)) == []
    assert connections == []
    assert visibility.calls == []
    assert '"WebhookDeliveriesDropped":[1.0]' in capsys.readouterr().out


def test_a_loopback_receiver_is_not_reached_outside_local_mode(
    cloud: Cloud, jobs: JobRepository, public_rt: Runtime, connections: list[tuple[str, int]]
) -> None:
    with serve(ok) as receiver:
        message = queued_event(public_rt, cloud, jobs, f"{receiver.url}/hook")
        assert run(record_of(message)) == []
        assert receiver.received == []
    assert connections == []


def test_a_host_resolving_to_loopback_is_refused_at_connect_time(
    cloud: Cloud,
    jobs: JobRepository,
    keys: KeyRepository,
    install_runtime: Callable[[Runtime], Runtime],
    connections: list[tuple[str, int]],
    visibility: Visibility,
) -> None:
    def rebinding(host: str, port: int) -> list[str]:
        return ["127.0.0.1"] if host == "hooks.example.net" else fake_resolver(host, port)

    keys.ensure_tenant("tenant-a")
    rt = install_runtime(
        Runtime(cloud.settings, clients=cloud.clients, provider_http=httpx.Client(), resolver=rebinding)
    )
    with serve(ok) as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        message = queued_event(rt, cloud, jobs, f"https://hooks.example.net:{port}/hook")
        assert run(record_of(message)) == []
        assert receiver.received == []
    assert connections == []
    assert visibility.calls == []


# -- malformed messages ---------------------------------------------------------------------------------


def test_a_message_without_a_tenant_attribute_is_dropped(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, visibility: Visibility
) -> None:
    with serve(ok) as receiver:
        message = queued_event(local_rt, cloud, jobs, f"{receiver.url}/hook")
        record = record_of(message)
        del record["messageAttributes"]["tenant_id"]
        assert run(record) == []
        assert receiver.received == []
    assert visibility.calls == []


def test_a_retry_after_date_is_honoured(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, visibility: Visibility
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    with serve(lambda request: Reply(503, b"", {"Retry-After": when})) as receiver:
        message = queued_event(local_rt, cloud, jobs, f"{receiver.url}/hook")
        assert run(record_of(message, attempt=1)) == [message["MessageId"]]
    [hidden] = visibility.timeouts
    assert 3590 <= hidden <= 3600
