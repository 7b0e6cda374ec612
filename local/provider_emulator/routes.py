"""Submit and status requests to an emulated provider, in the order a real API checks things.

Submit: latency fault, auth, `submit_error` fault, body validation, then the provider's limits (window
rate, tasks in flight) and, within them, the task is created.
Status: latency fault, auth, `status_error` fault, the query's task id, then the task's state.
"""

from __future__ import annotations

from local.provider_emulator.engine import Engine
from local.provider_emulator.faults import StatusErrorFault, SubmitErrorFault
from local.provider_emulator.limits import Refusal
from local.provider_emulator.providers.base import Incoming, Operation, ProviderApi, Reply
from local.provider_emulator.validation import Rejection, parse_json

CREDITS = 10_000  # every emulated account's balance


def handle_provider(engine: Engine, api: ProviderApi, request: Incoming, mount: str) -> Reply:
    path = mount + request.path
    operation = api.operation(request.method, request.path)
    if operation is None:
        reply, variant = api.error(404, f"no such endpoint: {request.method} {path}", path=path), None
    elif operation is Operation.SUBMIT:
        reply, variant = _submit(engine, api, request, path)
    elif operation is Operation.CREDITS:
        authorized = api.authorized(request, engine.config.api_keys[api.name])
        reply, variant = (Reply(200, api.credits_body(CREDITS)) if authorized else api.unauthorized(path)), None
    else:
        reply, variant = _status(engine, api, request, path)
    if not engine.config.variants:
        return reply
    shape = engine.next_variant(api) if variant is None else variant
    return Reply(reply.status, api.vary(reply.body, shape), reply.headers)


def _with_retry_after(reply: Reply, retry_after: int | None) -> Reply:
    if retry_after is None:
        return reply
    return Reply(reply.status, reply.body, {**reply.headers, "Retry-After": str(retry_after)})


def _submit(engine: Engine, api: ProviderApi, request: Incoming, path: str) -> tuple[Reply, int | None]:
    """The answer, and the answer shape it takes (a task's own; None for an error: the next in rotation)."""
    engine.count(api.name, "submits")
    body: object = None
    problem: Rejection | None = None
    try:
        body = parse_json(request.body)
    except Rejection as exc:
        problem = exc
    prompt = api.prompt_of(body)
    engine.pause_for_latency(api.name, prompt, "submit")

    if not api.authorized(request, engine.config.api_keys[api.name]):
        engine.count(api.name, "submits_rejected")
        return api.unauthorized(path), None
    fault = engine.faults.take(SubmitErrorFault, api.name, prompt)
    if fault is not None:
        engine.count(api.name, "submits_rejected")
        return _with_retry_after(api.fault_error(fault.status, path=path), fault.retry_after), None
    try:
        if problem is not None:
            raise problem
        spec = api.parse_submit(body)
    except Rejection as exc:
        engine.count(api.name, "submits_rejected")
        return api.error(exc.status or api.validation_status, exc.message, path=path), None
    assert isinstance(body, dict)  # parse_submit accepted it, so it is an object
    task = engine.create_task(api, spec, body)
    if isinstance(task, Refusal):
        return api.rate_limited(task, path=path), None
    return api.submit_reply(task.task_id, spec, task.created, task.job_seconds), task.variant


def _status(engine: Engine, api: ProviderApi, request: Incoming, path: str) -> tuple[Reply, int | None]:
    engine.count(api.name, "status_queries")
    task_id: str | None = None
    problem: Rejection | None = None
    try:
        task_id = api.status_task_id(request)
    except Rejection as exc:
        problem = exc
    task = None if task_id is None else engine.find(task_id, api.name)
    if task is not None:
        engine.note_status_query(task)
    engine.pause_for_latency(api.name, None if task is None else task.prompt, "status")

    variant = None if task is None else task.variant
    if not api.authorized(request, engine.config.api_keys[api.name]):
        return api.unauthorized(path), variant
    fault = engine.faults.take(StatusErrorFault, api.name, None if task is None else task.prompt)
    if fault is not None:
        return _with_retry_after(api.fault_error(fault.status, path=path), fault.retry_after), variant
    if problem is not None:
        return api.error(problem.status or api.validation_status, problem.message, path=path), variant
    if task is None:
        return api.not_found(task_id or "", path), None
    return Reply(200, api.status_body(engine.snapshot(task))), variant
