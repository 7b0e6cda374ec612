"""A handler for the sandbox pool's tests: says which process served it, waits for a file, fails or dies on demand."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("create"):
        Path(event["create"]).touch()
    if event.get("await"):
        deadline = time.monotonic() + 20
        while not Path(event["await"]).exists():
            if time.monotonic() > deadline:
                return {"pid": os.getpid(), "saw": False}
            time.sleep(0.01)
    if event.get("fail"):
        raise ValueError(event["fail"])
    if event.get("die"):
        os._exit(3)
    return {"pid": os.getpid(), "saw": True, "table": os.environ.get("TABLE_NAME")}
