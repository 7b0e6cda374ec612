"""Result files: valid MP4 boxes, distinct bytes per task, ranges, and streaming without buffering."""

from __future__ import annotations

import hashlib
import struct
import threading
import time
from pathlib import Path

import pytest

from local.provider_emulator.media import ASSETS, base_video, min_result_bytes, result_file
from tests.unit.provider_emulator.helpers import ProviderClient


def boxes(data: bytes) -> list[tuple[bytes, int]]:
    """Top-level MP4 boxes as (type, size); fails on a box that runs past the end."""
    found = []
    offset = 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        assert size >= 8
        assert offset + size <= len(data), f"{kind!r} box overruns the file"
        found.append((kind, size))
        offset += size
    return found


def finished_urls(client: ProviderClient, prompt: str = "p") -> tuple[str, str]:
    task_id = client.submit_ok(prompt)
    client.emulator.finish(task_id, "success")
    return task_id, client.result_urls(client.status_json(task_id))[0]


def test_committed_asset_is_a_small_valid_mp4():
    data = (ASSETS / "base.mp4").read_bytes()
    assert 1_000 < len(data) < 20_000
    kinds = [kind for kind, _ in boxes(data)]
    assert kinds[0] == b"ftyp"
    assert b"moov" in kinds
    assert b"mdat" in kinds
    assert data[8:12] in (b"isom", b"mp42", b"mp41")


def test_result_is_the_clip_plus_a_tag_box(clients, http):
    task_id, url = finished_urls(clients["kie"])
    data = http.get(url).content
    assert data.startswith(base_video())
    kinds = boxes(data)
    assert kinds[0][0] == b"ftyp"
    assert kinds[-1][0] == b"free"
    assert f"task={task_id}".encode() in data[len(base_video()) :]


def test_each_task_has_different_bytes(clients, http):
    digests = set()
    for provider in ("vidgo", "kie", "apimart"):
        for prompt in ("same prompt", "same prompt"):
            _, url = finished_urls(clients[provider], prompt)
            digests.add(hashlib.sha256(http.get(url).content).hexdigest())
    assert len(digests) == 6


def test_head_gives_headers_only(clients, http):
    _, url = finished_urls(clients["vidgo"])
    head = http.head(url)
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["Content-Length"]) == len(http.get(url).content)


def test_byte_ranges(clients, http):
    _, url = finished_urls(clients["aimlapi"])
    whole = http.get(url).content
    part = http.get(url, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206
    assert part.content == whole[10:100]
    assert part.headers["Content-Range"] == f"bytes 10-99/{len(whole)}"
    tail = http.get(url, headers={"Range": "bytes=-16"})
    assert tail.content == whole[-16:]
    rest = http.get(url, headers={"Range": f"bytes={len(whole) - 5}-"})
    assert rest.content == whole[-5:]
    beyond = http.get(url, headers={"Range": f"bytes={len(whole)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(whole)}"
    assert http.get(url, headers={"Range": "items=1-2"}).content == whole  # not a byte range: ignored


def test_unknown_files_are_404(clients, http, emulator):
    client = clients["kie"]
    task_id, url = finished_urls(client)
    assert http.get(url.replace("output-0", "output-1")).status_code == 404
    assert http.get(url.replace("/kie/", "/vidgo/")).status_code == 404
    assert http.get(f"{emulator.base_url}/cdn/kie/nope/output-0.mp4").status_code == 404
    running = client.submit_ok()
    task = emulator.engine.find(running)
    assert task is not None
    assert http.get(f"{emulator.base_url}/cdn/kie/{task.file_key}/output-0.mp4").status_code == 404  # not finished
    assert task_id


def test_padding_past_4_gib_uses_a_64_bit_box_size():
    size = (5 << 30) + 123
    file = result_file("task-big", 0, size)
    assert file.size == size
    box_offset = len(base_video())
    header = file.head[box_offset : box_offset + 16]
    assert struct.unpack(">I4sQ", header) == (1, b"free", size - box_offset)
    tail = b"".join(file.chunks(size - 100_000))
    assert len(tail) == 100_000
    assert tail == bytes(100_000)


def test_sizes_below_the_minimum_are_refused(control):
    response = control("POST", "/faults", {"kind": "result_size", "bytes": 100})
    assert response.status_code == 422
    assert str(min_result_bytes()) in response.json()["error"]
    with pytest.raises(ValueError, match="below the minimum"):
        result_file("t", 0, 100)


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc to read RSS")
def test_a_200_mb_result_streams_with_bounded_memory(clients, control, http):
    size = 200 * 1024 * 1024
    control("POST", "/faults", {"kind": "result_size", "provider": "pixwith", "bytes": size})
    _, url = finished_urls(clients["pixwith"])

    # The emulator runs in this process, so a body built in memory would show in this RSS.
    baseline = _rss_bytes()
    peak = baseline
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    received = 0
    digest = hashlib.sha256()
    first = b""
    try:
        with http.stream("GET", url) as response:
            assert int(response.headers["Content-Length"]) == size
            for chunk in response.iter_raw(1 << 20):
                if not first:
                    first = chunk[:8]
                received += len(chunk)
                digest.update(chunk)
    finally:
        stop.set()
        sampler.join()
    assert received == size
    assert first[4:8] == b"ftyp"
    assert peak - baseline < 48 * 1024 * 1024, f"RSS grew by {(peak - baseline) >> 20} MiB"
