"""Provider failures, classified once so routing, retries and status codes agree."""

from __future__ import annotations

from enum import StrEnum

from shared.errors import RelayError
from shared.models.common import ProviderName


class ErrorKind(StrEnum):
    RETRYABLE = "retryable"  # transient: 429, 455, 5xx, timeouts, network errors
    UNAVAILABLE = "unavailable"  # our account cannot use it now: bad key, no credits, feature disabled
    REJECTED = "rejected"  # the request itself is refused: 400, 422, content rules
    NOT_FOUND = "not_found"  # the provider does not know the task
    UNRECOGNIZED = "unrecognized"  # a refusal or error we do not know the meaning of: never final on first sight


class ProviderError(RelayError):
    """A provider call that did not give us what we asked for. Services turn it into the job's outcome; one that
    escapes to an HTTP handler is a 502."""

    status_code = 502
    code = "provider_error"

    def __init__(
        self,
        provider: ProviderName,
        kind: ErrorKind,
        message: str,
        *,
        http_status: int | None = None,
        provider_code: str | None = None,
        retry_after: float | None = None,
        maybe_accepted: bool = False,
        unreadable: bool = False,
        unrecognized: bool = False,
        answer: str | None = None,
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.kind = kind
        self.message = message
        self.http_status = http_status
        self.provider_code = provider_code
        self.retry_after = retry_after
        # The request reached the provider but no answer came back: it may have created a task.
        self.maybe_accepted = maybe_accepted
        # A 2xx answer we could not read, as opposed to an error the provider stated in it.
        self.unreadable = unreadable
        # An answer in a shape or with a meaning we do not know: on submit the job fails over, on a status
        # check the job keeps waiting (see shared/services/unrecognized.py).
        self.unrecognized = unrecognized or kind is ErrorKind.UNRECOGNIZED
        # The provider's answer, redacted (keys, tokens and signed URL queries removed), when unrecognized.
        self.answer = answer

    @property
    def failover(self) -> bool:
        """Another provider may well take this job."""
        return self.kind in (ErrorKind.RETRYABLE, ErrorKind.UNAVAILABLE, ErrorKind.UNRECOGNIZED)

    @property
    def retryable(self) -> bool:
        """Asking this provider again later may work."""
        return self.kind in (ErrorKind.RETRYABLE, ErrorKind.UNRECOGNIZED)


def kind_for_status(status: int) -> ErrorKind:
    """The documented HTTP (or envelope) codes of every provider, classified.

    400/422 the request is invalid; 401/403 our key is bad or not allowed; 402 insufficient
    credits; 404 unknown task (on submit: see `Provider.submit`); 429 rate limited; 433 a sub-key over
    its limit (Kie); 455 maintenance; 500/502/503/504 server side; 501 generation failed (Kie); 505
    feature disabled (Kie).
    """
    if status in (400, 413, 422):
        return ErrorKind.REJECTED
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status in (401, 402, 403, 433, 505):
        return ErrorKind.UNAVAILABLE
    if status == 501:
        return ErrorKind.REJECTED
    if status in (408, 409, 425, 429, 455) or status >= 500:
        return ErrorKind.RETRYABLE
    return ErrorKind.REJECTED
