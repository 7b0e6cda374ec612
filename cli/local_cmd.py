"""`kling-relay demo` and `kling-relay serve`: the whole system on this machine."""

from __future__ import annotations

import argparse

from cli import providers_cmd


def demo(args: argparse.Namespace) -> int:
    print("Kling Relay demo\n")
    print("Providers and what they can do:\n")
    providers_cmd.run(argparse.Namespace(json=False))
    print("\nNot built yet: the local stack (AWS emulator, provider emulator, HTTP adapter) that runs jobs end to end.")
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("demo", help="run the whole system end to end on this machine")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=demo)
