"""The code directories a Lambda of ours starts with, rebuilt on this machine, read-only.

- `task/<function>/`: the function's asset, made by the same bundler `cdk synth` uses, with its bytecode
  (`bundle_function`) or, as every deploy shipped until bytecode was added, sources only.
- `layer/python/`: the layer as the cache `cdk synth` copies holds it (bytecode included), or the same without
  its `__pycache__` directories. Its two native extension modules are built for arm64; each is replaced by the
  same pinned version's build for this machine, taken from the venv (the Python files are the layer's own).
- `runtime/`: what the Lambda Python runtime itself provides besides the standard library (boto3, botocore and
  their dependencies), copied from the venv with bytecode, as the runtime ships them.

The interpreter is started without `site` (`-S`), so nothing of the venv's site-packages is importable: a module
comes from one of these directories or from the standard library, and the probe reports any that did not.
"""

from __future__ import annotations

import compileall
import os
import shutil
import stat
import sysconfig
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from bench.common import ROOT
from infra import bytecode, layer_cache
from infra.bundling import bundle_function, copy_function_sources

# The Lambda Python runtime's own packages (besides the standard library), as it has them: with bytecode.
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
RUNTIME_SITE = f"/var/lang/lib/python{bytecode.PYTHON_VERSION}/site-packages"
CONDITIONS = ("source", "bytecode")


@dataclass(frozen=True)
class Sandbox:
    root: Path

    def task(self, function: str, condition: str) -> Path:
        return self.root / condition / "task" / function

    def layer(self, condition: str) -> Path:
        return self.root / condition / "layer" / "python"

    @property
    def runtime(self) -> Path:
        return self.root / "runtime"

    def search_path(self, function: str, condition: str) -> list[Path]:
        """sys.path ahead of the standard library, in the runtime's order: task root, layer, runtime packages."""
        return [self.task(function, condition), self.layer(condition), self.runtime]

    def listing(self) -> set[str]:
        return {str(path.relative_to(self.root)) for path in self.root.rglob("*")}


@contextmanager
def sandbox(functions: Iterable[str]) -> Iterator[Sandbox]:
    """Every function's task root and the layer in both conditions, plus the runtime's packages; removed on exit."""
    root = Path(tempfile.mkdtemp(prefix="bench-lambda-"))
    try:
        box = Sandbox(root)
        for condition in CONDITIONS:
            for function in functions:
                if condition == "bytecode":
                    bundle_function(ROOT, function, box.task(function, condition))
                else:
                    copy_function_sources(ROOT, function, box.task(function, condition))
            copy_layer(box.layer(condition), with_bytecode=condition == "bytecode")
        copy_runtime_packages(box.runtime)
        _read_only(root)
        yield box
    finally:
        _writable(root)
        shutil.rmtree(root, ignore_errors=True)


def copy_layer(target: Path, *, with_bytecode: bool) -> None:
    cached = layer_cache.build(ROOT) / "python"
    ignore = None if with_bytecode else shutil.ignore_patterns("__pycache__")
    shutil.copytree(cached, target, ignore=ignore)
    here = Path(sysconfig.get_paths()["purelib"])
    for info in target.glob("*.dist-info"):
        if not (here / info.name).is_dir():
            raise RuntimeError(f"this environment does not have the layer's {info.name}: run make install")
    for native in list(target.rglob("*.so")):
        module = native.name.split(".")[0]
        folder = here / native.parent.relative_to(target)
        build = folder / f"{module}{sysconfig.get_config_var('EXT_SUFFIX')}"
        if not build.is_file():
            raise RuntimeError(f"no build of {native.relative_to(target)} for this machine in {folder}")
        native.unlink()
        shutil.copy2(build, native.parent / build.name)


def copy_runtime_packages(target: Path) -> None:
    for name in RUNTIME_DISTRIBUTIONS:
        distribution = metadata.distribution(name)
        site = Path(str(distribution.locate_file("")))
        for entry in distribution.files or ():
            source = Path(str(distribution.locate_file(entry)))
            if not source.is_relative_to(site) or "__pycache__" in source.parts or source.suffix == ".pyc":
                continue  # console scripts outside site-packages, and this venv's own bytecode
            destination = target / source.relative_to(site)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    # Timestamp-based, like pip's, which is how the runtime's packages are installed.
    if not compileall.compile_dir(str(target), ddir=RUNTIME_SITE, quiet=1):
        raise RuntimeError(f"the runtime packages in {target} do not compile")


def _read_only(root: Path) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        mode = stat.S_IMODE(path.stat().st_mode)
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    root.chmod(0o555)


def _writable(root: Path) -> None:
    if not root.exists():
        return
    root.chmod(0o755)
    for directory, _, _ in os.walk(root):
        Path(directory).chmod(0o755)


def stdlib_paths() -> list[str]:
    """Where the standard library lives for this interpreter (its modules count as the runtime's own)."""
    paths = sysconfig.get_paths()
    return sorted({paths["stdlib"], paths["platstdlib"]})
