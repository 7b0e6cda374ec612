"""What each function's code asset holds (no CDK import: the local stack packages assets too)."""

from __future__ import annotations

from pathlib import Path


def function_sources(repo_root: Path, function: str) -> list[tuple[Path, Path]]:
    """(source, destination relative to the asset root) for everything a function ships."""
    return [
        (repo_root / "shared", Path("shared")),
        (repo_root / "functions" / "__init__.py", Path("functions") / "__init__.py"),
        (repo_root / "functions" / function, Path("functions") / function),
    ]
