"""Typed domain errors. Each knows its HTTP status and public code; handlers map them in one place."""

from __future__ import annotations

from typing import Any


class RelayError(Exception):
    """Base of every error this system raises on purpose."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequestError(RelayError):
    status_code = 400
    code = "bad_request"


class ValidationFailedError(RelayError):
    """A request that is well formed but asks for something not allowed."""

    status_code = 422
    code = "validation_error"


class UnsupportedRequestError(ValidationFailedError):
    """No provider (or not the named one) can honour a field of the request."""

    code = "unsupported_request"


class UnauthorizedError(RelayError):
    status_code = 401
    code = "unauthorized"


class NotFoundError(RelayError):
    status_code = 404
    code = "not_found"


class ConflictError(RelayError):
    status_code = 409
    code = "conflict"


class IdempotencyConflictError(ConflictError):
    code = "idempotency_conflict"


class JobTerminalError(ConflictError):
    code = "job_terminal"


class TaskClaimedError(ConflictError):
    """Another job already holds this provider task; the job was left as it was."""

    code = "task_claimed"


class PayloadTooLargeError(RelayError):
    status_code = 413
    code = "payload_too_large"


class ProviderRejectedError(RelayError):
    """The provider refused the job: our request or our account is the problem."""

    status_code = 502
    code = "provider_rejected"


class ProviderUnavailableError(RelayError):
    """No provider could take the job now; retrying later may work."""

    status_code = 503
    code = "provider_unavailable"

    def __init__(self, message: str, *, details: Any = None, retry_after: float | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class TooManyRequestsError(RelayError):
    """A limit of the caller's was reached; nothing was recorded. `retry_after` when a retry can succeed later."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, details: Any = None, retry_after: float | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class TooManyActiveJobsError(TooManyRequestsError):
    code = "too_many_active_jobs"


class BudgetExceededError(TooManyRequestsError):
    code = "budget_exceeded"


class CallbackRejectedError(RelayError):
    """A provider callback that failed verification; nothing was changed. `reason` is short, safe to log and count."""

    status_code = 401
    code = "callback_rejected"

    def __init__(self, reason: str, *, status_code: int = 401) -> None:
        super().__init__(f"callback rejected: {reason}", details={"reason": reason})
        self.reason = reason
        self.status_code = status_code


class ConfigurationError(RelayError):
    """A required setting or secret is missing: fail closed."""

    status_code = 500
    code = "configuration_error"


class InvalidTransitionError(RelayError):
    """A status change the job state machine does not allow."""

    status_code = 409
    code = "invalid_transition"

    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"a job cannot go from {current} to {target}")
        self.current = current
        self.target = target


class StaleVersionError(RelayError):
    """Another writer changed the job first; re-read and decide again."""

    status_code = 409
    code = "conflict"


class UnsafeUrlError(ValidationFailedError):
    """An outbound URL points somewhere we refuse to go."""

    code = "unsafe_url"
