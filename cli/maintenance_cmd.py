"""`kling-relay backfill-status-index`: once, after upgrading a deployment made before the `by_status` index.

Jobs stored by an earlier release lack the index's keys, so `GET /jobs?status=` would not list them until
their next status change. This gives every such job its keys (without changing it otherwise); running it
again finds nothing to do.
"""

from __future__ import annotations

import argparse

from cli import deployment
from shared.repository.jobs import JobRepository


def backfill_status_index(args: argparse.Namespace) -> int:
    found = deployment.resolve(args)
    updated = JobRepository(found.table_name).backfill_status_index()
    print(f"jobs indexed by status: {updated}")
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backfill = commands.add_parser(
        "backfill-status-index", help="index jobs stored before the by_status index existed (once, after upgrading)"
    )
    backfill.set_defaults(run=backfill_status_index)
    deployment.add_arguments(backfill)
