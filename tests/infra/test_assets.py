"""The synthesized code assets, as `cdk synth` bundles them, ship bytecode the runtime's import system uses.

Lambda's code directories are read-only: a module whose `.pyc` is missing, is for another Python, or would
be rejected by the import system is compiled from source on every cold start.
"""

from __future__ import annotations

import importlib.util
import json
import marshal
import sys
from pathlib import Path
from typing import Any

import pytest

from infra import bytecode
from infra.build import build_app
from infra.lambda_defaults import RUNTIME
from infra.names import STACK_NAME

LAYER_DESCRIPTION_START = "Third-party packages pinned in requirements/lambda.txt"
HASH_BASED = 0b01  # PEP 552 flags: bit 0 hash-based, bit 1 check the source
CHECK_SOURCE = 0b10


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """Each code asset of the real stack: name (handler, or `layer`) -> (directory, where Lambda puts it)."""
    app, _ = build_app(nag=False, outdir=str(tmp_path_factory.mktemp("cdk.out")))
    out = Path(app.synth().directory)
    template: dict[str, Any] = json.loads((out / f"{STACK_NAME}.template.json").read_text())
    found: dict[str, tuple[Path, str]] = {}
    for resource in template["Resources"].values():
        # Only our own code: the CDK's own functions and layers (the console's bucket deployment) ship as built.
        if resource["Type"] == "AWS::Lambda::Function" and resource["Properties"]["Handler"].startswith("functions."):
            key, name, root = resource["Properties"]["Code"]["S3Key"], resource["Properties"]["Handler"], "/var/task"
        elif resource["Type"] == "AWS::Lambda::LayerVersion" and resource["Properties"].get(
            "Description", ""
        ).startswith(LAYER_DESCRIPTION_START):
            key, name, root = resource["Properties"]["Content"]["S3Key"], "layer", "/opt"
        else:
            continue
        directory = out / f"asset.{key.removesuffix('.zip')}"
        assert directory.is_dir(), f"{name}: no bundled asset at {directory}"
        found[name] = (directory, root)
    return found


def runtime_cache_tag() -> str:
    """`cpython-313` for `python3.13`: the tag in the names the runtime's import system looks for."""
    return "cpython-" + RUNTIME.name.removeprefix("python").replace(".", "")


def test_the_runtime_and_the_compiling_python_agree() -> None:
    # The magic number checked below is this interpreter's; it is the runtime's only if the versions agree.
    assert RUNTIME.name == f"python{bytecode.PYTHON_VERSION}"
    assert sys.implementation.cache_tag == runtime_cache_tag()


def test_every_function_and_the_layer_are_checked(assets: dict[str, tuple[Path, str]]) -> None:
    assert "layer" in assets
    assert len([name for name in assets if name.endswith(".lambda_handler")]) >= 7


def test_every_module_ships_unchecked_bytecode_for_the_runtimes_python(assets: dict[str, tuple[Path, str]]) -> None:
    tag = runtime_cache_tag()
    for name, (directory, root) in assets.items():
        sources = sorted(p for p in directory.rglob("*.py") if "__pycache__" not in p.parts)
        assert sources, name
        for source in sources:
            compiled = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
            where = f"{name}: {source.relative_to(directory)}"
            assert compiled.is_file(), f"{where} has no {compiled.name}"
            data = compiled.read_bytes()
            assert data[:4] == importlib.util.MAGIC_NUMBER, f"{where}: bytecode for another Python"
            flags = int.from_bytes(data[4:8], "little")
            assert flags & HASH_BASED, f"{where}: timestamp-based bytecode (a zip's timestamps would invalidate it)"
            assert not flags & CHECK_SOURCE, f"{where}: checked bytecode (the source would be hashed at every import)"
            assert data[8:16] == importlib.util.source_hash(source.read_bytes()), f"{where}: compiled from other source"
            code = marshal.loads(data[16:])  # noqa: S302  (our own build output)
            assert code.co_filename == f"{root}/{source.relative_to(directory).as_posix()}", where


def test_no_bytecode_without_its_source_or_for_another_python(assets: dict[str, tuple[Path, str]]) -> None:
    tag = runtime_cache_tag()
    for name, (directory, _) in assets.items():
        for compiled in directory.rglob("*.pyc"):
            assert compiled.parent.name == "__pycache__", f"{name}: {compiled}"
            stem, _, rest = compiled.name.partition(".")
            assert rest == f"{tag}.pyc", f"{name}: {compiled.relative_to(directory)} is not for the runtime"
            assert (compiled.parent.parent / f"{stem}.py").is_file(), f"{name}: {compiled} has no source"
