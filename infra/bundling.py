"""Local (Docker-free) bundlers for the function code and the dependency layer.

Each function's asset is the repository root, bundled down to what that function imports of ours: the
`shared/` package, `functions/__init__.py` and `functions/<name>/`. Third-party packages live in the one
layer, copied from the cache `infra.layer_cache` builds. The repository root is only the asset's source;
nothing else from it is shipped. Both assets carry bytecode compiled by the runtime's Python version
(`infra.bytecode`): a function's is compiled here, never copied from this machine's `__pycache__`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii

from infra import bytecode, layer_cache
from infra.packaging import function_sources

_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


def bundle_function(repo_root: Path, function: str, output_dir: Path) -> None:
    """A function's asset: its sources, then their bytecode as the runtime will find them in its task root."""
    copy_function_sources(repo_root, function, output_dir)
    bytecode.compile_tree(output_dir, bytecode.TASK_ROOT)


def copy_function_sources(repo_root: Path, function: str, output_dir: Path) -> None:
    handler = repo_root / "functions" / function / "handler.py"
    if not handler.is_file():
        raise FileNotFoundError(f"function {function!r} has no handler module at functions/{function}/handler.py")
    for source, destination in function_sources(repo_root, function):
        target = output_dir / destination
        if source.is_dir():
            shutil.copytree(source, target, ignore=_SKIP, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


@jsii.implements(cdk.ILocalBundling)
class FunctionSourceBundler:
    def __init__(self, repo_root: Path, function: str) -> None:
        self.repo_root = repo_root
        self.function = function

    def try_bundle(self, output_dir: str, *_options: Any, **_keywords: Any) -> bool:
        bundle_function(self.repo_root, self.function, Path(output_dir))
        return True


@jsii.implements(cdk.ILocalBundling)
class LayerBundler:
    """Copies `python/` from the layer cache, building the cache first if it is missing (needs pip's index)."""

    def __init__(self, repo_root: Path) -> None:
        self.repo_root = repo_root

    def try_bundle(self, output_dir: str, *_options: Any, **_keywords: Any) -> bool:
        cached = layer_cache.build(self.repo_root)
        shutil.copytree(cached / "python", Path(output_dir) / "python", dirs_exist_ok=True)
        return True


def layer_asset_hash(repo_root: Path) -> str:
    """The layer changes exactly when the pinned requirements, the target runtime/platform or its bytecode do."""
    return f"{layer_cache.requirements_digest(repo_root)}-{layer_cache.target_tag()}"
