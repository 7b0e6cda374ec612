"""Builds the CDK app: the feature flags from cdk.json, the stack, and the cdk-nag AwsSolutions checks.

`python app.py` and `npx cdk synth` produce the same resources: without the CLI the cdk.json context is read
here; with it, the CLI's context (cdk.json plus `-c` options) overrides it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import RelayConfig
from infra.names import STACK_NAME
from infra.stack import KlingRelayStack

REPO_ROOT = Path(__file__).resolve().parents[1]


def cdk_json_context(repo_root: Path = REPO_ROOT) -> dict[str, Any]:
    context: dict[str, Any] = json.loads((repo_root / "cdk.json").read_text())["context"]
    return context


def build_app(
    context: Mapping[str, Any] | None = None,
    *,
    nag: bool = True,
    outdir: str | None = None,
    repo_root: Path = REPO_ROOT,
) -> tuple[cdk.App, KlingRelayStack]:
    app = cdk.App(context={**cdk_json_context(repo_root), **(context or {})}, outdir=outdir)
    config = RelayConfig.from_context(app.node, list(app.node.get_all_context()))
    stack = KlingRelayStack(
        app,
        STACK_NAME,
        config=config,
        repo_root=repo_root,
        description="Kling Relay: one API over several Kling 2.6 video providers",
    )
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack
