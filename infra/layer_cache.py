"""The Lambda dependency layer's contents, built once per `requirements/lambda.txt` and cached in `.build/`.

`make install` runs this (`python -m infra.layer_cache`) while the network is available, so a later synth
only copies the cached directory. It imports nothing from the CDK, so it stays fast when already built.
Wheels are fetched for the Lambda platform (Linux, arm64, CPython of the runtime version), not for this
machine, so no compiler and no Docker are involved.

Two stages, each in its own directory named by the requirements' digest and what it holds:
`layer-<digest>/` the installed wheels (fetched by pip), and `layer-<digest>-<target tag>/` the layer as
shipped, those files plus bytecode compiled by the runtime's Python version (`infra.bytecode`). The second
is made from the first without the network, so a cache of wheels from an earlier build is reused.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from infra import bytecode
from infra.bytecode import PYTHON_VERSION

REPO_ROOT = Path(__file__).resolve().parents[1]
PLATFORM = "manylinux2014_aarch64"
REQUIREMENTS = Path("requirements") / "lambda.txt"
CACHE_ROOT = Path(".build")
# Written last into a finished cache, naming what it was built for; a directory without it is ignored.
STAMP = ".target"

Runner = Callable[[Sequence[str]], object]


def requirements_digest(repo_root: Path) -> str:
    return hashlib.sha256((repo_root / REQUIREMENTS).read_bytes()).hexdigest()


def wheels_tag() -> str:
    """What the installed wheels are for: the runtime's CPython on the Lambda platform."""
    return f"cp{PYTHON_VERSION.replace('.', '')}-{PLATFORM}"


def target_tag() -> str:
    """What the layer is: those wheels plus the runtime Python's bytecode."""
    return f"{wheels_tag()}-{bytecode.TAG}"


def wheels_dir(repo_root: Path) -> Path:
    return repo_root / CACHE_ROOT / f"layer-{requirements_digest(repo_root)}"


def cache_dir(repo_root: Path) -> Path:
    return repo_root / CACHE_ROOT / f"layer-{requirements_digest(repo_root)}-{target_tag()}"


def is_built(directory: Path, tag: str) -> bool:
    stamp = directory / STAMP
    return (directory / "python").is_dir() and stamp.is_file() and stamp.read_text().strip() == tag


def pip_command(repo_root: Path, target: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",  # requirements/lambda.txt pins the whole transitive set
        "--no-compile",  # compiled in the next stage: hash-based, recording the paths the files have on Lambda
        "--only-binary=:all:",
        "--platform",
        PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--target",
        str(target),
        "-r",
        str(repo_root / REQUIREMENTS),
    ]


def _run(command: Sequence[str]) -> object:
    return subprocess.run(command, check=True)  # noqa: S603  (our own fixed pip command line)


def build(repo_root: Path, *, runner: Runner = _run) -> Path:
    """Return the layer's cache directory (holding `python/`), building what is missing first."""
    final = cache_dir(repo_root)
    if is_built(final, target_tag()):
        return final
    bytecode.require_runtime_python()  # before fetching anything
    wheels = install_wheels(repo_root, runner)

    def compile_layer(staging: Path) -> None:
        shutil.copytree(wheels / "python", staging / "python")
        bytecode.compile_tree(staging / "python", f"{bytecode.LAYER_ROOT}/python")

    _stage(final, target_tag(), compile_layer)
    return final


def install_wheels(repo_root: Path, runner: Runner = _run) -> Path:
    """The wheels' cache directory, installed by pip first if needed (needs pip's index)."""
    final = wheels_dir(repo_root)
    if is_built(final, wheels_tag()):
        return final

    def install(staging: Path) -> None:
        runner(pip_command(repo_root, staging / "python"))
        # Console scripts pip writes for the build machine; nothing on Lambda runs them.
        shutil.rmtree(staging / "python" / "bin", ignore_errors=True)

    _stage(final, wheels_tag(), install)
    return final


def _stage(final: Path, tag: str, fill: Callable[[Path], None]) -> None:
    """Fill a directory aside, stamp it, and rename it into place, so no half-built cache is ever used."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{final.name}.", dir=final.parent))
    try:
        fill(staging)
        (staging / STAMP).write_text(tag + "\n")
        if final.exists():  # a stale or half-written cache from an older run
            shutil.rmtree(final)
        staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main() -> int:
    directory = build(REPO_ROOT)
    print(f"Lambda layer dependencies: {directory.relative_to(REPO_ROOT)}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
