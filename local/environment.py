"""Process environment changes the local stack makes while it runs, and puts back when it stops."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping


def override_environment(values: Mapping[str, str]) -> Callable[[], None]:
    """Set these variables; the returned function restores what each was before (or removes it)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)

    def restore() -> None:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    return restore
