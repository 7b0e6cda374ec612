"""Which providers may take a request, in the order to try them."""

from __future__ import annotations

from shared.errors import ProviderUnavailableError, UnsupportedRequestError
from shared.models.common import ProviderName
from shared.models.request import JobRequest
from shared.providers.capabilities import Violation
from shared.providers.registry import capabilities
from shared.secrets import ProviderCredentials
from shared.settings import Settings


def _violations_detail(violations: list[Violation]) -> list[dict[str, str]]:
    return [{"field": v.field, "provider": v.provider, "rule": v.rule} for v in violations]


def candidates(request: JobRequest, settings: Settings, credentials: ProviderCredentials) -> list[ProviderName]:
    """Providers to try, best first. Raises a 422 naming every rule when none can honour the request."""
    if request.provider != "auto":
        name: ProviderName = request.provider
        if name not in settings.enabled_providers:
            raise UnsupportedRequestError(
                f"provider: {name} is not enabled here",
                details=[{"field": "provider", "provider": name, "rule": "is not enabled"}],
            )
        violations = capabilities(name).check(request)
        if violations:
            raise UnsupportedRequestError(
                "; ".join(v.message for v in violations), details=_violations_detail(violations)
            )
        if credentials.key_for(name) is None:
            raise ProviderUnavailableError(
                f"{name} is not configured (no API key)", details={"provider": name, "reason": "not_configured"}
            )
        return [name]

    every: list[Violation] = []
    able: list[ProviderName] = []
    for name in settings.routing_order():
        violations = capabilities(name).check(request)
        every.extend(violations)
        if not violations:
            able.append(name)
    if not able:
        raise UnsupportedRequestError(
            "no enabled provider supports this request: " + "; ".join(v.message for v in every),
            details=_violations_detail(every),
        )
    configured = [name for name in able if credentials.key_for(name) is not None]
    if not configured:
        raise ProviderUnavailableError(
            "no provider that supports this request is configured",
            details={"providers": able, "reason": "not_configured"},
        )
    return configured
