"""`Retry-After` (RFC 9110, 10.2.3) read as seconds from now, for provider answers and app webhooks alike.

Either delta-seconds (ASCII digits only: `str.isdigit` also accepts superscripts and other scripts' digits,
which `int` then refuses) or an HTTP date. Anything else, including a negative or fractional number, is no
advice at all (None), never an error: the header comes from someone else's server.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_DELTA_SECONDS = re.compile(r"[0-9]{1,12}")
_LONGEST_DATE = 64


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait (0 for a date already past), or None when the value is absent or not understood."""
    if not value:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    if len(value) > _LONGEST_DATE:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:  # "-0000" dates: RFC 5322 says the zone is unknown; HTTP dates are GMT
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())
