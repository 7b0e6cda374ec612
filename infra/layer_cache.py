"""The Lambda dependency layer's contents, built once per `requirements/lambda.txt` and cached in `.build/`.

`make install` runs this (`python -m infra.layer_cache`) while the network is available, so a later synth
only copies the cached directory. It imports nothing from the CDK, so it stays fast when already built.
Wheels are fetched for the Lambda platform (Linux, arm64, CPython of the runtime version), not for this
machine, so no compiler and no Docker are involved.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Must match the functions' runtime (infra.lambda_defaults.RUNTIME; a test keeps them together).
PYTHON_VERSION = "3.13"
PLATFORM = "manylinux2014_aarch64"
REQUIREMENTS = Path("requirements") / "lambda.txt"
CACHE_ROOT = Path(".build")
# Written last into a finished cache, naming what it was built for; a directory without it is ignored.
STAMP = ".target"

Runner = Callable[[Sequence[str]], object]


def requirements_digest(repo_root: Path) -> str:
    return hashlib.sha256((repo_root / REQUIREMENTS).read_bytes()).hexdigest()


def target_tag() -> str:
    return f"cp{PYTHON_VERSION.replace('.', '')}-{PLATFORM}"


def cache_dir(repo_root: Path) -> Path:
    return repo_root / CACHE_ROOT / f"layer-{requirements_digest(repo_root)}"


def is_built(directory: Path) -> bool:
    stamp = directory / STAMP
    return (directory / "python").is_dir() and stamp.is_file() and stamp.read_text().strip() == target_tag()


def pip_command(repo_root: Path, target: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",  # requirements/lambda.txt pins the whole transitive set
        "--no-compile",  # .pyc files for this machine's Python would be dead weight on the runtime's
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
    """Return the cache directory (holding `python/`), installing into it first if needed."""
    final = cache_dir(repo_root)
    if is_built(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{final.name}.", dir=final.parent))
    try:
        runner(pip_command(repo_root, staging / "python"))
        # Console scripts pip writes for the build machine; nothing on Lambda runs them.
        shutil.rmtree(staging / "python" / "bin", ignore_errors=True)
        (staging / STAMP).write_text(target_tag() + "\n")
        if final.exists():  # a stale or half-written cache from an older run
            shutil.rmtree(final)
        staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def main() -> int:
    directory = build(REPO_ROOT)
    print(f"Lambda layer dependencies: {directory.relative_to(REPO_ROOT)}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
