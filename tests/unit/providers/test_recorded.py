"""Every fixture under tests/events/providers/<provider>/recorded/ replayed through its adapter: recorded from
a real API by `kling-relay probe --submit --record`, or hand-made from a documented shape (and saying so)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.models.common import PROVIDER_NAMES
from shared.providers.recording import replay
from shared.providers.registry import PROVIDER_CLASSES
from tests.unit.providers.support import EVENTS

FIXTURES = sorted(path for name in PROVIDER_NAMES for path in (EVENTS / name / "recorded").glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def test_every_provider_has_a_fixture_of_each_operation_it_is_driven_by() -> None:
    for name in PROVIDER_NAMES:
        operations = {load(path)["operation"] for path in FIXTURES if path.parent.parent.name == name}
        assert {"submit", "status"} <= operations, name


@pytest.mark.parametrize("path", FIXTURES, ids=lambda path: f"{path.parent.parent.name}/{path.name}")
def test_a_fixture_replays_to_what_the_adapter_read_when_it_was_stored(path: Path) -> None:
    document = load(path)
    provider = path.parent.parent.name
    assert document["provider"] == provider
    if document["source"] == "documented":
        assert path.name.startswith("documented_")
        assert document["documentation"].startswith("https://")
    else:
        assert document["source"] == "recorded"
        assert path.name.startswith("recorded_")

    reading = replay(PROVIDER_CLASSES[provider], document)

    assert reading == document["reading"]
    assert reading["request_matches"], "the adapter no longer builds the request the fixture was answered for"
    assert not reading.get("unrecognized"), reading
