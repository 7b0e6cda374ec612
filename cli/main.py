"""The `kling-relay` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cli import jobs_cmd, keys_cmd, local_cmd, maintenance_cmd, probe_cmd, providers_cmd, tenants_cmd
from cli.deployment import DeploymentNotFound
from shared.errors import RelayError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kling-relay", description="Kling 2.6 video jobs over five providers.")
    commands = parser.add_subparsers(dest="command", required=True)
    providers_cmd.register(commands)
    keys_cmd.register(commands)
    tenants_cmd.register(commands)
    jobs_cmd.register(commands)
    local_cmd.register(commands)
    probe_cmd.register(commands)
    maintenance_cmd.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (RelayError, DeploymentNotFound) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
