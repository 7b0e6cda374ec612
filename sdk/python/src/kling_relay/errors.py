"""Every exception the SDK raises.

`KlingRelayError` is the root. An HTTP answer that is an error becomes an `APIStatusError`: the class
of its `code` when the SDK knows the code (`IdempotencyConflictError`, `BudgetExceededError`, ...),
otherwise the class of its HTTP status (`ConflictError`, `TooManyRequestsError`, ...), so that
`except ConflictError` also catches a conflict code added to the API later. Every one carries
`status_code`, `code`, `message`, `details` (the API's explanation: the field, provider and rule
of a 422, the limit and current usage of a 429) and `retry_after` in seconds when the API gave one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from kling_relay.models import Job


class KlingRelayError(Exception):
    """The root of every exception raised by this package."""


class ConfigurationError(KlingRelayError):
    """The client cannot be built: no base URL or API key, or a base URL it refuses to send a key to."""


class APIConnectionError(KlingRelayError):
    """No answer came back (connection refused or reset, DNS, protocol error), after every retry."""

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request
        self.tries = 1  # requests made, the retries included


class APITimeoutError(APIConnectionError):
    """The request timed out, after every retry."""


class APIStatusError(KlingRelayError):
    """The API answered with an error status. Subclasses name the status or the error code."""

    default_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str,
        details: Any = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(f"{status_code} {code}: {message}")
        self.message = message
        self.status_code = status_code
        self.code = code
        self.details = details
        self.retry_after = retry_after
        self.request_id = request_id
        self.response = response
        self.tries = 1  # requests made, the retries included


class APIResponseError(KlingRelayError):
    """The API answered with a success status but a body this SDK cannot read."""

    def __init__(self, message: str, *, response: httpx.Response | None = None) -> None:
        super().__init__(message)
        self.response = response


class BadRequestError(APIStatusError):
    """400: the request is malformed (not JSON, a bad cursor or limit)."""

    default_code = "bad_request"


class AuthenticationError(APIStatusError):
    """401: no API key, or an unknown or revoked one."""

    default_code = "unauthorized"


class CallbackRejectedError(AuthenticationError):
    """401 on a provider callback route (apps do not call it; listed so every API code has a class)."""

    default_code = "callback_rejected"


class PermissionDeniedError(APIStatusError):
    """403: the key is not allowed this request."""

    default_code = "forbidden"


class NotFoundError(APIStatusError):
    """404: no such job (or not yours), or no such route."""

    default_code = "not_found"


class UsageNotAvailableError(NotFoundError):
    """404 for `GET /v1/usage`: this deployment does not report usage yet."""


class ConflictError(APIStatusError):
    """409: another request changed the job first; retrying is safe (the SDK retries it)."""

    default_code = "conflict"


class IdempotencyConflictError(ConflictError):
    """409: this Idempotency-Key was used before with a different request (`details.job_id` names that job)."""

    default_code = "idempotency_conflict"


class JobTerminalError(ConflictError):
    """409: the job already finished (`details.status` says how), so it cannot be canceled."""

    default_code = "job_terminal"


class TaskClaimedError(ConflictError):
    """409: the provider task named for the job is already held by another job; nothing was changed."""

    default_code = "task_claimed"


class InvalidTransitionError(ConflictError):
    """409: the job cannot move to the asked status from its current one."""

    default_code = "invalid_transition"


class PayloadTooLargeError(APIStatusError):
    """413: the request body is too large."""

    default_code = "payload_too_large"


class UnsupportedMediaTypeError(APIStatusError):
    """415: the body is not JSON."""

    default_code = "unsupported_media_type"


class UnprocessableEntityError(APIStatusError):
    """422: a field is invalid; `details` names it."""


class RequestValidationError(UnprocessableEntityError):
    """422: a field is invalid (`details` lists each field, type and message)."""

    default_code = "validation_error"


class UnsupportedRequestError(UnprocessableEntityError):
    """422: no provider (or not the named one) can honour a field; `details` names field, provider and rule."""

    default_code = "unsupported_request"


class UnsafeUrlError(UnprocessableEntityError):
    """422: a URL in the request points somewhere the relay refuses to go (not https, a private address)."""

    default_code = "unsafe_url"


class TooManyRequestsError(APIStatusError):
    """429: slow down; `retry_after` says for how long when the API knows."""


class ThrottledError(TooManyRequestsError):
    """429 from the API's stage-wide throttle."""

    default_code = "throttled"


class RateLimitedError(TooManyRequestsError):
    """429: this key's request rate or quota is used up."""

    default_code = "rate_limited"


class TooManyActiveJobsError(TooManyRequestsError):
    """429: the tenant has as many unfinished jobs as it may; submit again when one ends."""

    default_code = "too_many_active_jobs"


class BudgetExceededError(TooManyRequestsError):
    """429: the tenant's monthly credit budget would be exceeded (not retried: waiting a few seconds cannot help)."""

    default_code = "budget_exceeded"


class InternalServerError(APIStatusError):
    """5xx: the API failed."""

    default_code = "internal_error"


class ServerConfigurationError(InternalServerError):
    """500: the deployment is missing a setting or secret; its operator has to fix it."""

    default_code = "configuration_error"


class ProviderRejectedError(InternalServerError):
    """502: the provider refused the job (our request or account is the problem; retrying cannot help)."""

    default_code = "provider_rejected"


class ProviderCallError(InternalServerError):
    """502: a provider call failed in a way the API did not turn into the job's outcome."""

    default_code = "provider_error"


class ServiceUnavailableError(InternalServerError):
    """503: the API cannot take the request now; retrying later may work."""


class ProviderUnavailableError(ServiceUnavailableError):
    """503: no provider could take the job now."""

    default_code = "provider_unavailable"


class NoProviderAvailableError(ServiceUnavailableError):
    """503: no provider is available for the request."""

    default_code = "no_provider_available"


class TrackingUnavailableError(ServiceUnavailableError):
    """503: the job's tracking could not start; nothing was sent to a provider."""

    default_code = "tracking_unavailable"


class StorageUnavailableError(ServiceUnavailableError):
    """503: the archive's storage could not be reached; retrying later works."""

    default_code = "archive_store_unavailable"


# Classes by the API's error code, then by HTTP status for codes this version does not know.
ERROR_CODES: dict[str, type[APIStatusError]] = {
    cls.default_code: cls
    for cls in (
        BadRequestError,
        AuthenticationError,
        CallbackRejectedError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        IdempotencyConflictError,
        JobTerminalError,
        TaskClaimedError,
        InvalidTransitionError,
        PayloadTooLargeError,
        UnsupportedMediaTypeError,
        RequestValidationError,
        UnsupportedRequestError,
        UnsafeUrlError,
        ThrottledError,
        RateLimitedError,
        TooManyActiveJobsError,
        BudgetExceededError,
        InternalServerError,
        ServerConfigurationError,
        ProviderRejectedError,
        ProviderCallError,
        ProviderUnavailableError,
        NoProviderAvailableError,
        TrackingUnavailableError,
        StorageUnavailableError,
    )
    if cls.default_code is not None
}
ERROR_STATUSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: UnprocessableEntityError,
    429: TooManyRequestsError,
    503: ServiceUnavailableError,
}


def error_class(status_code: int, code: str) -> type[APIStatusError]:
    """The class for an error answer: by its code when known, else by its status."""
    if code in ERROR_CODES:
        return ERROR_CODES[code]
    if status_code in ERROR_STATUSES:
        return ERROR_STATUSES[status_code]
    return InternalServerError if status_code >= 500 else APIStatusError


class JobNotSucceededError(KlingRelayError):
    """A download was asked of a job that has no such output (not succeeded, or fewer outputs)."""

    def __init__(self, message: str, *, job: Job) -> None:
        super().__init__(message)
        self.job = job


class ChecksumMismatchError(KlingRelayError):
    """A downloaded output's bytes do not match the job's recorded SHA-256 or size; nothing was kept."""

    def __init__(
        self, message: str, *, expected_sha256: str, actual_sha256: str, expected_bytes: int, actual_bytes: int
    ) -> None:
        super().__init__(message)
        self.expected_sha256 = expected_sha256
        self.actual_sha256 = actual_sha256
        self.expected_bytes = expected_bytes
        self.actual_bytes = actual_bytes


class DownloadError(KlingRelayError):
    """The output's storage answered with an error (an expired link, a missing object)."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class WaitTimeoutError(KlingRelayError, TimeoutError):
    """`jobs.wait` gave up before the job finished; `job` is the last view of it (the job goes on)."""

    def __init__(self, message: str, *, job: Job) -> None:
        super().__init__(message)
        self.job = job


class WebhookVerificationError(KlingRelayError):
    """A webhook delivery failed verification: do not act on it (answer 400 or 401)."""


class WebhookSignatureError(WebhookVerificationError):
    """No `v1` signature in `webhook-signature` matches the body signed with the secret."""


class WebhookTimestampError(WebhookVerificationError):
    """`webhook-timestamp` is not a number, or too far from now (a replay, or a skewed clock)."""


class WebhookPayloadError(WebhookVerificationError):
    """The signature holds, but the body is not a job event this SDK can read."""
