#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth` / `npx cdk deploy` run this (see cdk.json); `python app.py` works too."""

from infra.build import build_app

app, _stack = build_app()
app.synth()
