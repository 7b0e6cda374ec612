"""Provider answers made safe to keep: secret-bearing fields, signed URL queries and bearer credentials go."""

from __future__ import annotations

import json

from shared.providers.redaction import REDACTED, answer_excerpt, redact, redact_text


def test_fields_named_for_secrets_lose_their_values_at_any_depth() -> None:
    answer = {
        "data": {"taskId": "t1", "apiKey": "k", "nested": [{"token": "x", "webhookHmacKey": "h", "file_key": "f"}]},
        "Authorization": "Bearer abc",
        "signature": "",
        "keep_original_sound": True,
    }
    assert redact(answer) == {
        "data": {
            "taskId": "t1",
            "apiKey": REDACTED,
            "nested": [{"token": REDACTED, "webhookHmacKey": REDACTED, "file_key": REDACTED}],
        },
        "Authorization": REDACTED,
        "signature": "",
        "keep_original_sound": True,
    }


def test_every_url_loses_its_query_even_inside_json_text() -> None:
    param = json.dumps({"callBackUrl": "https://relay.example.com/v1/callbacks/kie/job_1?token=s3cret"})
    redacted = redact({"param": param, "url": "https://cdn.example.com/v.mp4?X-Amz-Signature=abc&Expires=1#t"})
    assert "s3cret" not in redacted["param"]
    assert "https://relay.example.com/v1/callbacks/kie/job_1?[redacted]" in redacted["param"]
    assert redacted["url"] == "https://cdn.example.com/v.mp4?[redacted]#t"


def test_bearer_credentials_and_named_secrets_are_replaced_in_text() -> None:
    text = "denied for Bearer sk-live-123 using key sk-live-123"
    assert redact_text(text, secrets=("sk-live-123",)) == f"denied for Bearer {REDACTED} using key {REDACTED}"


def test_an_excerpt_keeps_json_compact_and_text_as_text_and_is_bounded() -> None:
    assert answer_excerpt(b'{"status": "x", "token": "t"}') == '{"status":"x","token":"[redacted]"}'
    assert answer_excerpt(b"<html>https://a.example/x?sig=1</html>") == "<html>https://a.example/x?[redacted]</html>"
    long = answer_excerpt(json.dumps({"a": "x" * 10_000}).encode(), limit=100)
    assert len(long) == 100
    assert long.endswith("…")
