"""Synthesizing the CDK app for local use (no asset bundling), cached by the inputs that shape it."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from infra.names import STACK_NAME
from infra.packaging import function_sources
from local.aws.template import Template

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".build" / "local-synth"
# Everything the synthesized template depends on. The console's files change only the asset hash of its file
# deployment, which local mode does not use (it serves console/ itself), so they are left out.
INPUTS = (
    "app.py",
    "cdk.json",
    "infra",
    "shared/settings.py",
    "shared/apigw.py",
    "shared/repository/schema.py",
    "shared/webhooks/retry.py",
    "requirements/lambda.txt",
)
SYNTH = (
    "from infra.build import build_app\n"
    "import sys\n"
    "app, _ = build_app(context={'aws:cdk:bundling-stacks': []}, nag=False, outdir=sys.argv[1])\n"
    "app.synth()\n"
)


def inputs_digest(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for name in INPUTS:
        path = root / name
        files = sorted(p for p in path.rglob("*.py")) + sorted(path.rglob("*.json")) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def synthesize(root: Path = ROOT) -> Template:
    """The stack's template, synthesized once per change of its inputs (about 10-25 s when it runs)."""
    final = CACHE / inputs_digest(root)
    template = final / f"{STACK_NAME}.template.json"
    if not template.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        # Synthesize aside and rename into place, so concurrent runs never see half a cloud assembly.
        staging = Path(tempfile.mkdtemp(prefix="synth-", dir=CACHE))
        env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
        env.pop("AWS_ENDPOINT_URL", None)
        done = subprocess.run(
            [sys.executable, "-c", SYNTH, str(staging)], cwd=root, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0 or not (staging / template.name).is_file():
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(f"synthesis failed:\n{done.stderr[-4000:]}")
        try:
            staging.rename(final)
        except OSError:  # another run finished first; its result is the same
            shutil.rmtree(staging, ignore_errors=True)
    return Template.load(template)


def is_project_handler(handler: str) -> bool:
    """`functions.<name>.handler.lambda_handler`: one of this project's functions, not one the CDK adds."""
    return handler.startswith("functions.")


def asset_archives(template: Template, root: Path = ROOT) -> dict[str, bytes]:
    """A zip per code asset the template names: each function's own sources, as its bundler would ship them."""
    archives: dict[str, bytes] = {}
    for resource in template.resources.values():
        props = resource.get("Properties", {})
        code = props.get("Code") or props.get("Content")
        if not isinstance(code, dict) or "S3Key" not in code:
            continue
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            if resource["Type"] == "AWS::Lambda::Function" and not is_project_handler(str(props["Handler"])):
                # The CDK's own functions (the console's file deployment) are not run locally.
                archive.writestr("README.txt", "Not run locally: the local stack does this function's work itself.\n")
            elif resource["Type"] == "AWS::Lambda::Function":
                function = str(props["Handler"]).split(".")[1]
                for source, destination in function_sources(root, function):
                    files = [source] if source.is_file() else sorted(source.rglob("*.py"))
                    for file in files:
                        name = destination / file.relative_to(source) if source.is_dir() else destination
                        archive.write(file, str(name))
            else:
                archive.writestr("python/README.txt", "Locally, third-party packages come from this environment.\n")
        archives[str(code["S3Key"])] = buffer.getvalue()
    return archives
