"""A local emulator of the five Kling 2.6 provider APIs, with fault injection.

One threaded HTTP server mounts each provider under `/<provider>` and speaks its documented API: paths,
auth headers, body shapes and JSON types, task-id shapes, status vocabularies, answer envelopes and error
styles. Tasks move queued -> running -> success over `job_seconds`; results are small, real MP4 files
(distinct bytes per task) served from `/cdn/...`; Vidgo and Kie call back (Kie signed when a key is set).

    from local.provider_emulator import ProviderEmulator
    emu = ProviderEmulator(port=0, job_seconds=1.0, kie_hmac_key="k")
    base = emu.start()                 # "http://127.0.0.1:<port>"
    emu.provider_base_url("kie")       # f"{base}/kie" -> POST {base}/kie/api/v1/jobs/createTask
    emu.api_key("kie")                 # "emulator-kie-key" unless api_keys= says otherwise
    emu.asset_url("first.png")         # a sample asset: first.png, last.png (frames), motion.mp4 (4 s reference)
    emu.stop()

Standalone: `python -m local.provider_emulator --port 8900 [--job-seconds 5] [--kie-hmac-key K]`.

Control API (JSON over HTTP, no auth, under `/_control`):

    GET    /_control                      base URLs, API keys, asset URLs
    POST   /_control/reset                forget tasks, faults, counters and callback logs
    POST   /_control/faults               add a fault -> {"id": "fault_1"}
    GET    /_control/faults               faults with `used` and `remaining`
    DELETE /_control/faults               remove all faults
    DELETE /_control/faults/<id>          remove one fault
    GET    /_control/tasks[?provider=p]   tasks (see below)
    GET    /_control/tasks/<task_id>      one task (percent-encode AI/ML ids, they contain ":" and "/")
    POST   /_control/tasks/<task_id>/finish  {"outcome": "success"|"fail", "message"?} ends a task now
    GET    /_control/stats                per provider: submits (+ accepted/rejected), submits_rate_limited,
                                          status_queries, downloads, callbacks (attempts), callbacks_delivered
    GET    /_control/callbacks            every callback attempt, in order
    GET    /_control/config               timing and limits; PUT with {"job_seconds"?, "provider_job_seconds"?:
                                          {"kie": 0.5, "vidgo": null}, "callback_backoff_scale"?, "variants"?,
                                          "limits"?: {"kie": {"submits_per_window": 20, "window_seconds": 10,
                                          "max_concurrent": 100}, "vidgo": null}}; invalid -> 400, no change

Submit limits: over a provider's rolling window rate or its tasks in flight, a submit is refused in that
provider's rate-limit style (429; Pixwith HTTP 200 `code: 0` "Too many ...") and counted as
submits_rate_limited. Only accepted submits take a slot.

A task shows: provider, task_id, model, state (queued/running/succeeded/failed), provider_status,
progress, prompt, submitted body, callback_url, created_at, job_seconds, finished_at, fail_message,
result_urls, result_bytes, status_queries, downloads and callback_attempts (url, label, attempt,
sent_at, status_code or error, delivered, signature headers, body).

A fault is `{"kind": ..., "provider": <name>|null, "match_prompt": <substring>|null, "times": <n>|null,
...params}`; it matches requests/tasks of that provider whose prompt contains the substring, and is used
up after `times` matches (null: never). Kinds and parameters:

    latency               seconds, on: submit|status|download|any (default any)
    submit_error          status: 400|401|402|403|404|422|429|455|500|501|502|503|505, retry_after?
                          (in the provider's own style; Pixwith answers HTTP 200 `code: 0` with its
                          message, e.g. 402 -> "Credits not enough"; Kie's body `code` equals the status)
    status_error          status, retry_after? - the same, on status queries
    generation_failed     message? - the task ends failed with the provider's failure fields
    callback_drop         no callback is sent (recorded with label "dropped")
    callback_duplicate    count (default 1) - the terminal callback is sent count more times
    callback_delay        seconds - the first callback attempt waits this long
    callback_out_of_order after the terminal callback, a stale contradicting one: Vidgo "running",
                          Kie the opposite ending ("fail" for a success, "success" for a failure)
    callback_forged       how: bad_signature | stale_timestamp (age_seconds, default 3600) | bad_token
                          (the callback URL's `token` query value replaced) | wrong_task (another task's
                          id in the body, validly signed for that id); sent instead of the genuine one
    result_expired        status: 403|404 (default 403) - downloads answer as an expired CDN link
    download_slow         bytes_per_second
    download_truncated    after_bytes - full Content-Length declared, connection closed after that many
    result_size           bytes - the result file is padded to exactly this size (streamed)

Request faults (latency, submit_error, status_error, download faults) are taken per request;
generation_failed and result_size once per task when it ends; callback faults once per task when its
terminal callback is planned. Callback faults exist for vidgo and kie only.
"""

from __future__ import annotations

from local.provider_emulator.callbacks import SIGNATURE_HEADER, TIMESTAMP_HEADER, kie_signature
from local.provider_emulator.emulator import ProviderEmulator
from local.provider_emulator.limits import KIE_DOCUMENTED_LIMIT, ProviderLimit

__all__ = [
    "KIE_DOCUMENTED_LIMIT",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "ProviderEmulator",
    "ProviderLimit",
    "kie_signature",
]
