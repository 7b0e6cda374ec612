"""Kie callback signatures: the documented scheme, the time window, and failing closed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import CallbackRejectedError
from shared.providers.kie_signature import sign_kie_callback, verify_kie_signature

KEY = "secret"
TASK_ID = "task123"
SENT_AT = 1_700_000_000
WINDOW = 300
# Computed outside Python: printf 'task123.1700000000' | openssl dgst -sha256 -hmac secret -binary | base64
KNOWN_SIGNATURE = "ykwzd/UtPwP/s3EW7aSnBbqa5/DzkljakdcgR0jeHqo="


def verify(**overrides: object) -> None:
    arguments: dict[str, object] = {
        "hmac_key": KEY,
        "task_id": TASK_ID,
        "timestamp": str(SENT_AT),
        "signature": KNOWN_SIGNATURE,
        "now": float(SENT_AT),
        "window_seconds": WINDOW,
    }
    arguments.update(overrides)
    verify_kie_signature(**arguments)  # type: ignore[arg-type]


def rejected(**overrides: object) -> str:
    with pytest.raises(CallbackRejectedError) as caught:
        verify(**overrides)
    return caught.value.reason


def test_signature_matches_an_independent_computation() -> None:
    assert sign_kie_callback(KEY, TASK_ID, SENT_AT) == KNOWN_SIGNATURE
    assert sign_kie_callback(KEY, TASK_ID, str(SENT_AT)) == KNOWN_SIGNATURE


def test_non_ascii_key_and_task_id_are_signed_as_utf8() -> None:
    # printf 'ïd-ü.1700000000' | openssl dgst -sha256 -hmac 'clé' -binary | base64
    assert sign_kie_callback("clé", "ïd-ü", SENT_AT) == "zUUVYMXqmJKsaZPEWf3cJdgyWF54VV5vwFoSo2evcZo="


def test_a_valid_signature_passes() -> None:
    verify()


@pytest.mark.parametrize("drift", [-WINDOW, -1, 0, 1, WINDOW])
def test_timestamps_inside_the_window_pass(drift: int) -> None:
    verify(now=float(SENT_AT + drift))


def test_a_timestamp_older_than_the_window_is_stale() -> None:
    assert rejected(now=SENT_AT + WINDOW + 1.0) == "stale_timestamp"


def test_a_timestamp_ahead_of_the_window_is_from_the_future() -> None:
    assert rejected(now=SENT_AT - WINDOW - 1.0) == "future_timestamp"


def test_a_signature_made_with_another_key_is_refused() -> None:
    assert rejected(signature=sign_kie_callback("other-key", TASK_ID, SENT_AT)) == "bad_signature"


def test_a_signature_for_another_task_is_refused() -> None:
    assert rejected(task_id="task124") == "bad_signature"


def test_a_signature_for_another_timestamp_is_refused() -> None:
    assert rejected(timestamp=str(SENT_AT + 1)) == "bad_signature"


@pytest.mark.parametrize(
    "signature",
    [
        KNOWN_SIGNATURE.rstrip("="),  # unpadded Base64 is not what Kie sends
        "ca4c3377f52d3f03ffb37116eda4a705ba9ae7f0f39258da91d7204748de1eaa",  # hex, not Base64
        KNOWN_SIGNATURE[:-2] + "A=",
        "ykwzd/UtPwP/s3EW7aSnBbqa5/DzkljakdcgR0jeHqö=",  # non-ASCII must be a no, not a crash
    ],
)
def test_a_wrong_signature_is_refused(signature: str) -> None:
    assert rejected(signature=signature) == "bad_signature"


def test_surrounding_whitespace_in_header_values_is_ignored() -> None:
    verify(timestamp=f" {SENT_AT} ", signature=f"{KNOWN_SIGNATURE}\t")


@pytest.mark.parametrize(
    "timestamp", ["1700000000.0", "1.7e9", "-1700000000", "abc", "\uff11\uff17\uff10\uff10", "1" * 13]
)
def test_a_timestamp_that_is_not_integer_seconds_is_refused(timestamp: str) -> None:
    assert rejected(timestamp=timestamp) == "bad_timestamp"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"hmac_key": None}, "missing_key"),
        ({"hmac_key": ""}, "missing_key"),
        ({"hmac_key": None, "signature": None, "timestamp": None, "task_id": None}, "missing_key"),
        ({"task_id": None}, "missing_task_id"),
        ({"task_id": ""}, "missing_task_id"),
        ({"timestamp": None}, "missing_timestamp"),
        ({"timestamp": "  "}, "missing_timestamp"),
        ({"signature": None}, "missing_signature"),
        ({"signature": ""}, "missing_signature"),
    ],
)
def test_anything_missing_is_a_rejection(overrides: dict[str, object], reason: str) -> None:
    assert rejected(**overrides) == reason


def test_signing_needs_a_key() -> None:
    with pytest.raises(ValueError, match="key"):
        sign_kie_callback("", TASK_ID, SENT_AT)


@given(
    key=st.text(min_size=1, max_size=64),
    task_id=st.text(min_size=1, max_size=80),
    sent_at=st.integers(min_value=0, max_value=4_000_000_000),
    drift=st.integers(min_value=-WINDOW, max_value=WINDOW),
)
def test_any_signed_callback_verifies_and_any_other_key_does_not(
    key: str, task_id: str, sent_at: int, drift: int
) -> None:
    signature = sign_kie_callback(key, task_id, sent_at)
    common = {"task_id": task_id, "timestamp": str(sent_at), "now": float(sent_at + drift), "window_seconds": WINDOW}
    verify_kie_signature(hmac_key=key, signature=signature, **common)  # type: ignore[arg-type]
    with pytest.raises(CallbackRejectedError, match="bad_signature"):
        verify_kie_signature(hmac_key=key + "x", signature=signature, **common)  # type: ignore[arg-type]


def test_a_task_id_with_a_lone_surrogate_is_refused_not_crashed() -> None:
    assert rejected(task_id="task\ud800") == "bad_signature"
