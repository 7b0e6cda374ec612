"""Docker-free bundling: what each function ships, and the dependency-layer cache (no network here)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_logs as logs

from infra import layer_cache
from infra.bundling import copy_function_sources
from infra.lambda_defaults import FunctionSpec, LambdaDefaults

REQUIREMENTS = "pydantic==2.14.3\nhttpx==0.28.1\n"


def write(path: Path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    write(root / "requirements" / "lambda.txt", REQUIREMENTS)
    write(root / "shared" / "__init__.py")
    write(root / "shared" / "models" / "job.py", "JOB = 1\n")
    write(root / "shared" / "__pycache__" / "x.cpython-311.pyc", "stale")
    write(root / "functions" / "__init__.py")
    for name in ("api", "poll"):
        write(root / "functions" / name / "__init__.py")
        write(root / "functions" / name / "handler.py", f"NAME = {name!r}\n")
    write(root / "local" / "stack.py", "not shipped\n")
    write(root / "tests" / "test_x.py", "not shipped\n")
    write(root / ".venv" / "big.bin", "not shipped\n")
    return root


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


class FakePip:
    """Stands in for pip: records the command and leaves what pip would (packages and console scripts)."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, command: Sequence[str]) -> object:
        self.commands.append(list(command))
        target = Path(command[command.index("--target") + 1])
        write(target / "pydantic" / "__init__.py", "# pydantic\n")
        write(target / "bin" / "httpx", "#!/usr/bin/env python\n")
        return None


def test_a_function_ships_shared_and_its_own_folder_only(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"

    copy_function_sources(repo, "api", out)

    assert files(out) == {
        "shared/__init__.py",
        "shared/models/job.py",
        "functions/__init__.py",
        "functions/api/__init__.py",
        "functions/api/handler.py",
    }


def test_a_function_without_a_handler_cannot_be_bundled(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="'archive'"):
        copy_function_sources(repo, "archive", tmp_path / "out")


def test_cache_directory_is_named_by_the_requirements_digest(repo: Path) -> None:
    digest = hashlib.sha256(REQUIREMENTS.encode()).hexdigest()

    assert layer_cache.cache_dir(repo) == repo / ".build" / f"layer-{digest}"


def test_pip_fetches_lambda_platform_wheels_without_dependencies(repo: Path) -> None:
    command = layer_cache.pip_command(repo, repo / "out")

    assert command[1:4] == ["-m", "pip", "install"]
    for flag in ("--no-deps", "--only-binary=:all:", "--no-compile"):
        assert flag in command
    assert command[command.index("--platform") + 1] == "manylinux2014_aarch64"
    assert command[command.index("--python-version") + 1] == "3.13"
    assert command[command.index("--implementation") + 1] == "cp"
    assert command[command.index("-r") + 1] == str(repo / "requirements" / "lambda.txt")


def test_cache_is_built_once_then_reused(repo: Path) -> None:
    pip = FakePip()

    first = layer_cache.build(repo, runner=pip)
    second = layer_cache.build(repo, runner=pip)

    assert first == second == layer_cache.cache_dir(repo)
    assert len(pip.commands) == 1
    assert files(first) == {"python/pydantic/__init__.py", layer_cache.STAMP}
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no staging directory left behind


def test_a_cache_for_another_runtime_is_rebuilt(repo: Path) -> None:
    pip = FakePip()
    stale = layer_cache.cache_dir(repo)
    write(stale / "python" / "old" / "__init__.py")
    write(stale / layer_cache.STAMP, "cp313-manylinux2014_x86_64\n")

    layer_cache.build(repo, runner=pip)

    assert len(pip.commands) == 1
    assert files(stale) == {"python/pydantic/__init__.py", layer_cache.STAMP}


def test_a_failed_install_leaves_no_cache(repo: Path) -> None:
    def failing(command: Sequence[str]) -> object:
        raise subprocess.CalledProcessError(1, list(command))

    with pytest.raises(subprocess.CalledProcessError):
        layer_cache.build(repo, runner=failing)

    assert not layer_cache.cache_dir(repo).exists()
    assert list((repo / ".build").iterdir()) == []


def test_synth_bundles_each_function_separately_and_the_layer_from_the_cache(repo: Path, tmp_path: Path) -> None:
    layer_cache.build(repo, runner=FakePip())
    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
    stack = cdk.Stack(app, "Bundled")
    lambdas = LambdaDefaults(stack, "Lambda", repo_root=repo, log_retention=logs.RetentionDays.ONE_WEEK)
    for name in ("api", "poll"):
        lambdas.create(
            stack, name, FunctionSpec(name=name, description=name, memory_mb=128, timeout=cdk.Duration.seconds(3))
        )

    assembly = app.synth()

    out = Path(assembly.directory)
    template = json.loads((out / "Bundled.template.json").read_text())
    assets = {
        k: out
        / ("asset." + v["Properties"][("Code" if v["Type"] == "AWS::Lambda::Function" else "Content")]["S3Key"][:-4])
        for k, v in template["Resources"].items()
        if v["Type"] in ("AWS::Lambda::Function", "AWS::Lambda::LayerVersion")
    }
    by_handler = {
        template["Resources"][k]["Properties"].get("Handler", "layer"): files(path) for k, path in assets.items()
    }
    shared = {"shared/__init__.py", "shared/models/job.py", "functions/__init__.py"}
    assert by_handler == {
        "functions.api.handler.lambda_handler": shared | {"functions/api/__init__.py", "functions/api/handler.py"},
        "functions.poll.handler.lambda_handler": shared | {"functions/poll/__init__.py", "functions/poll/handler.py"},
        "layer": {"python/pydantic/__init__.py"},
    }
