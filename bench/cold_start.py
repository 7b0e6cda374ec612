"""Cold start as Lambda starts: a fresh interpreter importing a handler from read-only copies of what it ships.

Every sample is a new `python -S` process whose search path is, in the runtime's order, a read-only copy of the
function's asset (its task root), of the layer, and of the runtime's own packages (boto3 with its bytecode, as
the runtime has it) - `bench.lambda_sandbox`. PYTHONDONTWRITEBYTECODE=1 and read-only directories mean no
bytecode exists except what the assets ship; the run checks afterwards that none was written. Each handler is
measured twice: "source only" (the assets as every deploy shipped them until now) and "with shipped bytecode"
(as `cdk synth` now bundles them). The environment is the function's own (its template variables, POWERTOOLS_*
included, and the variables the Lambda runtime sets), with no AWS endpoint. The figure is the import statement's
time inside the process; interpreter start-up is the same for every target and is reported beside it. Targets run
in a rotated order each round, so drift over the run touches them all alike. Nothing is warmed up first.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from typing import Any

from bench.common import Report, median, table
from bench.lambda_sandbox import CONDITIONS, Sandbox, sandbox, stdlib_paths

BASELINE = "boto3"
TARGET_RATIO = 2.0
# Runs inside the sandboxed interpreter: time the import, then say where every loaded module came from.
PROBE = """
import sys, time
started, cpu = time.perf_counter(), time.process_time()
__import__(sys.argv[1])
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
import json, os
roots = sys.argv[2].split(os.pathsep)
stdlib = tuple(sys.argv[3].split(os.pathsep))
loaded = {"from_source": 0, "from_bytecode": 0, "stdlib": 0, "outside": []}
for module in list(sys.modules.values()):
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None)
    if not origin or not os.path.isabs(origin):
        continue
    if origin.startswith(stdlib):
        loaded["stdlib"] += 1
    elif not origin.startswith(tuple(roots)):
        loaded["outside"].append(origin)
    elif origin.endswith(".py"):
        cached = getattr(spec, "cached", None)
        loaded["from_bytecode" if cached and os.path.exists(cached) else "from_source"] += 1
print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu, **loaded}))
"""
_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)$")
# How -X importtime's per-module self time is grouped: each library by its top-level package.
LIBRARY_GROUPS = {
    "aws_lambda_powertools": "powertools",
    "aws_xray_sdk": "xray sdk",
    "wrapt": "xray sdk",
    "pydantic": "pydantic",
    "pydantic_core": "pydantic",
    "annotated_types": "pydantic",
    "typing_inspection": "pydantic",
    "typing_extensions": "pydantic",
    "pydantic_settings": "pydantic-settings",
    "dotenv": "pydantic-settings",
    "boto3": "boto3/botocore",
    "botocore": "boto3/botocore",
    "s3transfer": "boto3/botocore",
    "jmespath": "boto3/botocore",
    "dateutil": "boto3/botocore",
    "six": "boto3/botocore",
    "urllib3": "boto3/botocore",
    "httpx": "httpx",
    "httpcore": "httpx",
    "h11": "httpx",
    "anyio": "httpx",
    "idna": "httpx",
    "certifi": "httpx",
    "sniffio": "httpx",
    "standardwebhooks": "standardwebhooks",
    "shared": "ours",
    "functions": "ours",
}


def handler_modules() -> dict[str, tuple[str, str, dict[str, str], int]]:
    """Handler module -> (function folder, logical id, its template environment, memory), from the app."""
    from local.synth import synthesize

    found: dict[str, tuple[str, str, dict[str, str], int]] = {}
    for logical_id, resource in synthesize().of_type("AWS::Lambda::Function").items():
        props = resource["Properties"]
        module = props["Handler"].rpartition(".")[0]
        variables = props.get("Environment", {}).get("Variables", {})
        # References (table name, ARNs) resolve at deploy time; a placeholder of the same kind stands in.
        environment = {k: v if isinstance(v, str) else f"kling-relay-{k.lower()}" for k, v in variables.items()}
        found[module] = (module.split(".")[1], logical_id, environment, int(props.get("MemorySize", 128)))
    return dict(sorted(found.items()))


def lambda_environment(
    box: Sandbox, function: str, condition: str, logical_id: str, variables: dict[str, str], memory: int
) -> dict[str, str]:
    task = box.task(function, condition)
    env = {name: os.environ[name] for name in ("PATH", "LANG") if name in os.environ}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(str(p) for p in box.search_path(function, condition)),
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_NAME": logical_id,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            # Libraries look for it to tell they run in Lambda (the X-Ray SDK then skips its sampler clients).
            "LAMBDA_TASK_ROOT": str(task),
            "LAMBDA_RUNTIME_DIR": str(box.runtime),
            **variables,
        }
    )
    return env


class Target:
    def __init__(self, module: str, condition: str, function: str, env: dict[str, str], cwd: str) -> None:
        self.module, self.condition, self.function, self.env, self.cwd = module, condition, function, env, cwd
        self.samples: list[dict[str, Any]] = []

    @property
    def name(self) -> str:
        return self.module if self.module == BASELINE else f"{self.module} ({self.condition})"

    def command(self, *flags: str) -> list[str]:
        roots = self.env["PYTHONPATH"]
        return [sys.executable, "-S", *flags, "-c", PROBE, self.module, roots, os.pathsep.join(stdlib_paths())]

    def sample(self) -> None:
        started = time.perf_counter()
        done = subprocess.run(self.command(), env=self.env, cwd=self.cwd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"importing {self.name} failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if result["outside"]:
            raise RuntimeError(f"{self.name} imported modules from outside the sandbox: {result['outside'][:5]}")
        self.samples.append({**result, "wall": wall})

    def ms(self, measure: str) -> float:
        """Median of `seconds` (the import's wall time) or `cpu_seconds` (its CPU time), in ms."""
        return median([s[measure] for s in self.samples]) * 1000

    def figures(self, base: Target) -> dict[str, Any]:
        return {
            "cpu_ms_median": round(self.ms("cpu_seconds"), 1),
            "wall_ms_median": round(self.ms("seconds"), 1),
            "wall_ms_min": round(min(s["seconds"] for s in self.samples) * 1000, 1),
            "wall_ms_max": round(max(s["seconds"] for s in self.samples) * 1000, 1),
            "process_ms_median": round(median([s["wall"] for s in self.samples]) * 1000, 1),
            "cpu_ratio_to_boto3": round(self.ms("cpu_seconds") / base.ms("cpu_seconds"), 2),
            "wall_ratio_to_boto3": round(self.ms("seconds") / base.ms("seconds"), 2),
            "modules_from_source": self.samples[-1]["from_source"],
            "modules_from_bytecode": self.samples[-1]["from_bytecode"],
        }

    def libraries_ms(self, runs: int) -> dict[str, float]:
        """Import self time per library group: each module's least over `runs` runs of `-X importtime`, summed.

        The least of several runs is each module's cost with the least interference from a busy machine.
        """
        least: dict[str, int] = {}
        for _ in range(runs):
            done = subprocess.run(
                self.command("-X", "importtime"), env=self.env, cwd=self.cwd, capture_output=True, text=True, check=True
            )
            for line in done.stderr.splitlines():
                match = _IMPORTTIME.match(line)
                if match:
                    module, own = match.group(4), int(match.group(1))
                    least[module] = min(least.get(module, own), own)
        totals: dict[str, float] = {}
        for module, own in least.items():
            top = module.partition(".")[0]
            stdlib = top in sys.stdlib_module_names or top.startswith("_sysconfigdata")
            group = LIBRARY_GROUPS.get(top, "stdlib" if stdlib else f"other:{top}")
            totals[group] = totals.get(group, 0.0) + own / 1000
        return {group: round(ms, 1) for group, ms in sorted(totals.items())}


def run(quick: bool) -> Report:
    rounds = 5 if quick else 15
    report = Report("cold_start", f"python -m bench cold_start{' --quick' if quick else ''}", quick)
    modules = handler_modules()
    functions = [function for function, *_ in modules.values()]
    with sandbox(functions) as box:
        before = box.listing()
        targets: list[Target] = []
        for module, (function, logical_id, variables, memory) in modules.items():
            for condition in CONDITIONS:
                env = lambda_environment(box, function, condition, logical_id, variables, memory)
                targets.append(Target(module, condition, function, env, str(box.task(function, condition))))
        api = next(t for t in targets if t.module == "functions.api.handler" and t.condition == "bytecode")
        # The baseline gets the environment of the function whose settings are the largest (the API's).
        baseline = Target(BASELINE, "runtime", api.function, api.env, api.cwd)
        everyone = [baseline, *targets]
        for round_number in range(rounds):
            shift = round_number % len(everyone)
            for target in everyone[shift:] + everyone[:shift]:
                target.sample()
        libraries = {t.module: t.libraries_ms(5) for t in targets if t.condition == "bytecode"}
        libraries[BASELINE] = baseline.libraries_ms(5)
        written = box.listing() - before
        if written:
            raise RuntimeError(f"files were written into the read-only sandbox: {sorted(written)[:5]}")

    base_cpu, base_wall = baseline.ms("cpu_seconds"), baseline.ms("seconds")
    figures: dict[str, Any] = {"rounds": rounds, "baseline": baseline.figures(baseline), "handlers": {}}
    rows: list[list[Any]] = [
        [BASELINE, "-", "-", f"{base_cpu:.0f}", "1.00x", f"{base_wall:.0f}", "1.00x", "-", _process(baseline)]
    ]
    for module in modules:
        source = next(t for t in targets if t.module == module and t.condition == "source")
        compiled = next(t for t in targets if t.module == module and t.condition == "bytecode")
        figures["handlers"][module] = {
            "source_only": source.figures(baseline),
            "with_bytecode": compiled.figures(baseline),
        }
        source_cpu, cpu, wall = source.ms("cpu_seconds"), compiled.ms("cpu_seconds"), compiled.ms("seconds")
        rows.append(
            [module, f"{source_cpu:.0f}", f"{source_cpu / base_cpu:.2f}x", f"{cpu:.0f}", f"{cpu / base_cpu:.2f}x",
             f"{wall:.0f}", f"{wall / base_wall:.2f}x", f"{source_cpu - cpu:.0f}", _process(compiled)]
        )  # fmt: skip
        ratio = cpu / base_cpu
        report.check(
            f"{module} import (shipped bytecode) vs import boto3, CPU time", f"<= {TARGET_RATIO:.1f}x",
            f"{ratio:.2f}x (wall {wall / base_wall:.2f}x)", ratio <= TARGET_RATIO,
        )  # fmt: skip
    figures["libraries_ms"] = libraries
    print(f"cold start: median of {rounds} fresh interpreters per target, read-only code, no bytecode written")
    header = ["module", "source only CPU ms", "vs boto3", "bytecode CPU ms", "vs boto3", "bytecode wall ms",
              "vs boto3", "saved CPU ms", "process ms"]  # fmt: skip
    print(table(header, rows))
    # Optional imports a library tries and does not find (brotli, awscrt, ...) take no time and are left out.
    groups = sorted(
        {g for per in libraries.values() for g, ms in per.items() if ms >= 1},
        key=lambda g: -max(p.get(g, 0) for p in libraries.values()),
    )
    print("import self time by library, with shipped bytecode (ms; each module's least of 5 -X importtime runs):")
    lib_rows = [
        [m.removeprefix("functions.").removesuffix(".handler"), *[f"{libraries[m].get(g, 0):.0f}" for g in groups]]
        for m in [BASELINE, *modules]
    ]
    print(table(["module", *groups], lib_rows))
    report.figures = figures
    report.notes.append(
        "CPU ms / wall ms: the import statement's CPU and elapsed time inside a fresh `python -S` whose path is the "
        "read-only task root, layer and runtime packages; process ms: the whole process, interpreter start-up "
        "included (with bytecode). The targets use CPU time: on two shared cores the elapsed time also holds the "
        "waits for a core, while a function's init on Lambda is CPU-bound at its memory's share of a core."
    )
    return report


def _process(target: Target) -> str:
    return f"{median([s['wall'] for s in target.samples]) * 1000:.0f}"
