"""Bytecode shipped in every asset, compiled by the runtime's own Python version.

Lambda's code directories are read-only, so a module without a usable `.pyc` beside it is compiled from
source on every cold start. Each asset therefore ships `__pycache__/<module>.cpython-3NN.pyc` files, the
layout the runtime's import system reads. They are hash-based and unchecked: the import system neither
compares a timestamp (zips and deploys do not keep them) nor re-hashes the source; an asset is rebuilt
whenever its sources change, so the bytecode cannot go stale. The files are reproducible (no timestamps,
the source path recorded as it will be on Lambda), so asset hashes stay deterministic.
"""

from __future__ import annotations

import compileall
import py_compile
import sys
from pathlib import Path

# Must match the functions' runtime (infra.lambda_defaults.RUNTIME; a test keeps them together).
PYTHON_VERSION = "3.13"
INVALIDATION = py_compile.PycInvalidationMode.UNCHECKED_HASH
# Names the bytecode's kind in cache keys and asset hashes: a layer with bytecode is a different artefact.
TAG = "pyc-unchecked"
# Where each asset's files are on Lambda: a function's code in the task root, a layer's under /opt.
TASK_ROOT = "/var/task"
LAYER_ROOT = "/opt"


class WrongInterpreterError(RuntimeError):
    """Bytecode is specific to a Python minor version: this interpreter is not the runtime's."""


def require_runtime_python() -> None:
    running = "{}.{}".format(*sys.version_info[:2])
    if running != PYTHON_VERSION:
        raise WrongInterpreterError(
            f"bytecode for the python{PYTHON_VERSION} runtime must be compiled by Python {PYTHON_VERSION}, "
            f"and this is Python {running} ({sys.executable}): build with the project's venv (make install)"
        )


def compile_tree(directory: Path, location: str) -> None:
    """Compile every `.py` under `directory`, which will be found at `location` on Lambda.

    A file that does not compile fails the build: it could not be imported on Lambda either.
    """
    require_runtime_python()
    compiled = compileall.compile_dir(
        str(directory),
        ddir=location,
        quiet=1,
        workers=1,
        invalidation_mode=INVALIDATION,
    )
    if not compiled:
        raise RuntimeError(f"some Python files under {directory} do not compile with Python {PYTHON_VERSION}")
