"""Docker-free bundling: what each function ships, and the dependency-layer cache (no network here)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_logs as logs

from infra import bytecode, layer_cache
from infra.bundling import bundle_function, copy_function_sources
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


def with_bytecode(sources: set[str]) -> set[str]:
    """The sources plus the `__pycache__` file the runtime's Python reads for each."""
    tag = "cpython-" + bytecode.PYTHON_VERSION.replace(".", "")
    compiled = set()
    for source in sources:
        folder, _, name = source.rpartition("/")
        compiled.add(f"{folder}/__pycache__/{name[: -len('.py')]}.{tag}.pyc".lstrip("/"))
    return sources | compiled


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


def test_a_function_asset_carries_bytecode_for_its_sources_and_none_from_this_machine(
    repo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"

    bundle_function(repo, "api", out)

    sources = {
        "shared/__init__.py",
        "shared/models/job.py",
        "functions/__init__.py",
        "functions/api/__init__.py",
        "functions/api/handler.py",
    }
    assert files(out) == with_bytecode(sources)  # the repository's stale x.cpython-311.pyc is not shipped


def test_bytecode_is_the_same_whatever_the_hash_seed(repo: Path, tmp_path: Path) -> None:
    """Asset hashes are computed over the bundle: compiling the same sources twice must give the same bytes."""
    write(repo / "shared" / "sets.py", "def member(x):\n    return x in {'alpha', 'beta', 'gamma', 'delta'}\n")
    script = "import sys; from pathlib import Path; from infra.bundling import bundle_function; "
    script += "bundle_function(Path(sys.argv[1]), 'api', Path(sys.argv[2]))"
    trees = []
    for seed in ("1", "2"):
        out = tmp_path / f"out-{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", script, str(repo), str(out)], env=env, check=True)
        trees.append({name: (out / name).read_bytes() for name in files(out)})

    assert trees[0] == trees[1]
    assert "shared/__pycache__/sets.cpython-313.pyc" in trees[0]


def test_a_function_without_a_handler_cannot_be_bundled(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="'archive'"):
        copy_function_sources(repo, "archive", tmp_path / "out")


def test_cache_directories_are_named_by_the_requirements_digest_and_what_they_hold(repo: Path) -> None:
    digest = hashlib.sha256(REQUIREMENTS.encode()).hexdigest()

    assert layer_cache.wheels_dir(repo) == repo / ".build" / f"layer-{digest}"
    assert layer_cache.cache_dir(repo) == repo / ".build" / f"layer-{digest}-cp313-manylinux2014_aarch64-pyc-unchecked"


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
    assert files(first) == with_bytecode({"python/pydantic/__init__.py"}) | {layer_cache.STAMP}
    assert (first / layer_cache.STAMP).read_text() == "cp313-manylinux2014_aarch64-pyc-unchecked\n"
    wheels = layer_cache.wheels_dir(repo)
    assert files(wheels) == {"python/pydantic/__init__.py", layer_cache.STAMP}
    assert sorted(p.name for p in first.parent.iterdir()) == sorted([first.name, wheels.name])  # no staging left


def test_wheels_from_an_earlier_build_are_compiled_without_fetching_again(repo: Path) -> None:
    wheels = layer_cache.wheels_dir(repo)
    write(wheels / "python" / "pydantic" / "__init__.py", "# pydantic\n")
    write(wheels / layer_cache.STAMP, "cp313-manylinux2014_aarch64\n")

    def no_network(command: Sequence[str]) -> object:
        raise AssertionError(f"pip ran: {command}")

    built = layer_cache.build(repo, runner=no_network)

    assert files(built) == with_bytecode({"python/pydantic/__init__.py"}) | {layer_cache.STAMP}


def test_a_cache_for_another_runtime_is_rebuilt(repo: Path) -> None:
    pip = FakePip()
    stale = layer_cache.wheels_dir(repo)
    write(stale / "python" / "old" / "__init__.py")
    write(stale / layer_cache.STAMP, "cp313-manylinux2014_x86_64\n")

    built = layer_cache.build(repo, runner=pip)

    assert len(pip.commands) == 1
    assert files(stale) == {"python/pydantic/__init__.py", layer_cache.STAMP}
    assert files(built) == with_bytecode({"python/pydantic/__init__.py"}) | {layer_cache.STAMP}


def test_bytecode_for_the_runtime_is_only_compiled_by_its_python_version(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pip = FakePip()
    monkeypatch.setattr(bytecode, "PYTHON_VERSION", "3.99")

    with pytest.raises(bytecode.WrongInterpreterError, match=r"must be compiled by Python 3\.99"):
        layer_cache.build(repo, runner=pip)

    assert pip.commands == []  # refused before fetching anything


def test_a_failed_install_leaves_no_cache(repo: Path) -> None:
    def failing(command: Sequence[str]) -> object:
        raise subprocess.CalledProcessError(1, list(command))

    with pytest.raises(subprocess.CalledProcessError):
        layer_cache.build(repo, runner=failing)

    assert not layer_cache.cache_dir(repo).exists()
    assert not layer_cache.wheels_dir(repo).exists()
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
    api = shared | {"functions/api/__init__.py", "functions/api/handler.py"}
    poll = shared | {"functions/poll/__init__.py", "functions/poll/handler.py"}
    assert by_handler == {
        "functions.api.handler.lambda_handler": with_bytecode(api),
        "functions.poll.handler.lambda_handler": with_bytecode(poll),
        "layer": with_bytecode({"python/pydantic/__init__.py"}),
    }
