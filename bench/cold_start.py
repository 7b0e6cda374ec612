"""Cold start: each handler module imported in a fresh interpreter, next to a bare `import boto3`.

Every sample is a new `python` process with the environment a deployed function has (its template
variables, POWERTOOLS_* included, the Lambda runtime's own variables, no AWS endpoint). The figure is
the time of the import statement alone, taken inside that process, so interpreter start-up is not in
it (it is the same for every target and is reported separately). Targets run in a rotated order in
each round, so drift over the run touches all of them alike. One unmeasured round first fills the
bytecode caches.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from typing import Any

from bench.common import ROOT, Report, median, table

BASELINE = "boto3"
# A Lambda has the layer's packages and the runtime's boto3, nothing else: packages of this environment
# that it would not have are made unimportable (httpx, for one, imports its optional CLI's `rich` when present).
PROBE = (
    "import importlib, importlib.abc, sys, time\n"
    "absent = set(sys.argv[2].split(','))\n"
    "class Absent(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.partition('.')[0] in absent:\n"
    "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
    "        return None\n"
    "sys.meta_path.insert(0, Absent())\n"
    "started = time.perf_counter()\n"
    "importlib.import_module(sys.argv[1])\n"
    "print(time.perf_counter() - started)\n"
)
# What the Lambda Python runtime itself provides besides the standard library.
RUNTIME_DISTRIBUTIONS = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
TARGET_RATIO = 2.0
_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)$")


def handler_modules() -> dict[str, tuple[str, dict[str, str], int]]:
    """Handler module -> (function name, its template environment, memory), from the synthesized app."""
    from local.synth import synthesize

    found: dict[str, tuple[str, dict[str, str], int]] = {}
    for logical_id, resource in synthesize().of_type("AWS::Lambda::Function").items():
        props = resource["Properties"]
        module = props["Handler"].rpartition(".")[0]
        variables = props.get("Environment", {}).get("Variables", {})
        # References (table name, ARNs) resolve at deploy time; a placeholder of the same kind stands in.
        environment = {k: v if isinstance(v, str) else f"kling-relay-{k.lower()}" for k, v in variables.items()}
        found[module] = (logical_id, environment, int(props.get("MemorySize", 128)))
    return dict(sorted(found.items()))


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def absent_packages() -> list[str]:
    """Top-level modules installed here whose distribution is neither in the layer nor in the Lambda runtime."""
    from importlib.metadata import packages_distributions

    layer = {
        _normalize(line.split("==")[0])
        for line in (ROOT / "requirements" / "lambda.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    allowed = layer | {_normalize(name) for name in RUNTIME_DISTRIBUTIONS}
    absent = []
    for module, distributions in packages_distributions().items():
        if module.isidentifier() and not any(_normalize(d) in allowed for d in distributions):
            absent.append(module)
    project = {"shared", "functions", "local", "infra", "cli", "bench", "tests"}
    return sorted(set(absent) - project)


def lambda_environment(function: str, variables: dict[str, str], memory: int) -> dict[str, str]:
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_NAME": function,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            # Libraries look for it to tell they run in Lambda (the X-Ray SDK then skips its sampler clients).
            "LAMBDA_TASK_ROOT": str(ROOT),
            **variables,
        }
    )
    return env


def sample(module: str, env: dict[str, str], absent: str) -> tuple[float, float]:
    """(import seconds, whole process seconds) of one fresh interpreter importing `module`."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, module, absent], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"importing {module} failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1]), wall


def heaviest_imports(module: str, env: dict[str, str], absent: str, count: int = 8) -> list[tuple[str, float]]:
    """Import time by top-level package (sum of each module's own time, `-X importtime`, one run)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PROBE, module, absent],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    totals: dict[str, float] = {}
    for line in done.stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            name = match.group(4).partition(".")[0]
            totals[name] = totals.get(name, 0.0) + int(match.group(1)) / 1000
    return sorted(totals.items(), key=lambda item: -item[1])[:count]


def run(quick: bool) -> Report:
    rounds = 7 if quick else 15
    report = Report("cold_start", f"python -m bench cold_start{' --quick' if quick else ''}", quick)
    modules = handler_modules()
    envs = {m: lambda_environment(fn, variables, memory) for m, (fn, variables, memory) in modules.items()}
    # The baseline gets the environment of the function whose settings are the largest (the API's).
    envs[BASELINE] = envs.get("functions.api.handler", next(iter(envs.values())))
    targets = [BASELINE, *modules]
    samples: dict[str, list[tuple[float, float]]] = {t: [] for t in targets}
    absent = ",".join(absent_packages())
    for target in targets:  # unmeasured: bytecode caches
        sample(target, envs[target], absent)
    for round_number in range(rounds):
        order = targets[round_number % len(targets) :] + targets[: round_number % len(targets)]
        for target in order:
            samples[target].append(sample(target, envs[target], absent))

    base_ms = median([s[0] for s in samples[BASELINE]]) * 1000
    rows: list[list[Any]] = []
    figures: dict[str, Any] = {"rounds": rounds, "baseline": BASELINE, "per_target": {}}
    for target in targets:
        import_ms = median([s[0] for s in samples[target]]) * 1000
        process_ms = median([s[1] for s in samples[target]]) * 1000
        spread = [s[0] * 1000 for s in samples[target]]
        ratio = import_ms / base_ms
        figures["per_target"][target] = {
            "import_ms_median": round(import_ms, 1),
            "import_ms_min": round(min(spread), 1),
            "import_ms_max": round(max(spread), 1),
            "process_ms_median": round(process_ms, 1),
            "ratio_to_boto3": round(ratio, 2),
        }
        rows.append(
            [target, f"{import_ms:.1f}", f"{min(spread):.1f}-{max(spread):.1f}", f"{process_ms:.1f}", f"{ratio:.2f}x"]
        )
        if target != BASELINE:
            report.check(
                f"{target} import vs import boto3", f"<= {TARGET_RATIO:.1f}x", f"{ratio:.2f}x", ratio <= TARGET_RATIO
            )
    slowest = max(modules, key=lambda m: figures["per_target"][m]["import_ms_median"])
    heavy = heaviest_imports(slowest, envs[slowest], absent)
    figures["heaviest_imports"] = {"module": slowest, "top_level_cumulative_ms": dict(heavy)}
    print(f"cold start: median of {rounds} fresh interpreters per target")
    print(table(["module", "import ms", "min-max", "process ms", "vs boto3"], rows))
    print(f"slowest handler {slowest}; import time by top-level package (ms of own time, -X importtime, one run):")
    print("  " + ", ".join(f"{name} {ms:.0f}" for name, ms in heavy))
    report.figures = figures
    report.notes.append(
        "import ms: time of the import statement inside a fresh interpreter (bytecode cached); "
        "process ms: the whole `python -c` process, interpreter start-up included."
    )
    report.notes.append(f"made unimportable (not in the layer or the Lambda runtime): {absent}")
    return report
