"""`kling-relay probe` against the provider emulator: the key check, a recorded job, and what is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.main import main
from local.provider_emulator import ProviderEmulator
from shared.models.common import PROVIDER_NAMES
from shared.providers.recording import replay
from shared.providers.registry import PROVIDER_CLASSES


@pytest.fixture(scope="module")
def emulator() -> Iterator[ProviderEmulator]:
    emu = ProviderEmulator(job_seconds=0.3)
    emu.start()
    yield emu
    emu.stop()


def probe(emulator: ProviderEmulator, provider: str, *extra: str) -> int:
    return main(["probe", "--provider", provider, "--base-url", emulator.provider_base_url(provider), *extra])


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_a_job_is_run_and_every_exchange_recorded_sanitised(
    emulator: ProviderEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    provider: str,
) -> None:
    key = emulator.api_key(provider)
    monkeypatch.setenv(f"KLING_RELAY_{provider.upper()}_KEY", key)

    code = probe(emulator, provider, "--submit", "--record", str(tmp_path), "--interval", "0.1", "--timeout", "30")

    out = capsys.readouterr().out
    assert code == 0, out
    assert "key check: key_accepted" in out
    files = sorted(tmp_path.glob("recorded_*.json"))
    operations = [json.loads(path.read_text())["operation"] for path in files]
    assert operations[:2] == ["probe", "submit"]
    assert len(operations) > 2
    assert set(operations[2:]) == {"status"}
    for path in files:
        text = path.read_text()
        assert key not in text
        document = json.loads(text)
        assert document["source"] == "recorded"
        assert replay(PROVIDER_CLASSES[provider], document) == document["reading"]
    final = json.loads(files[-1].read_text())["reading"]
    assert (final["state"], final["results"], final["unrecognized"]) == ("succeeded", 1, False)


@pytest.mark.parametrize("provider", ["kie", "aimlapi", "pixwith"])
def test_a_wrong_key_is_reported_refused_and_nothing_is_submitted(
    emulator: ProviderEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], provider: str
) -> None:
    monkeypatch.setenv(f"KLING_RELAY_{provider.upper()}_KEY", "not-the-key")
    before = emulator.stats()[provider].submits  # type: ignore[index]

    assert probe(emulator, provider, "--submit") == 1

    assert "key check: key_refused" in capsys.readouterr().out
    assert emulator.stats()[provider].submits == before  # type: ignore[index]


def test_the_balance_is_shown_where_the_provider_has_one(
    emulator: ProviderEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KLING_RELAY_KIE_KEY", emulator.api_key("kie"))
    assert probe(emulator, "kie") == 0
    assert "balance 10000 credits" in capsys.readouterr().out


def test_without_a_key_in_the_environment_it_says_where_to_put_it(
    emulator: ProviderEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KLING_RELAY_VIDGO_KEY", raising=False)
    assert probe(emulator, "vidgo") == 2
    assert "set KLING_RELAY_VIDGO_KEY" in capsys.readouterr().err
