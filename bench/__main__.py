"""`python -m bench [NAME ...] [--quick]`: run benchmarks (all by default), print and save their figures."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from bench.common import Report, machine

NAMES = ("cold_start", "archive", "latency", "cost", "load", "status_list", "burst", "tenant_flood")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", choices=[*NAMES, []], metavar="NAME", help=f"any of {', '.join(NAMES)}; default all"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes and counts, scaled waits (says so in its output)"
    )
    burst = parser.add_argument_group("burst")
    burst.add_argument("--burst-jobs", type=int, metavar="N", help="jobs naming kie in the first run (300)")
    burst.add_argument("--burst-auto-jobs", type=int, metavar="N", help="auto jobs in the second run (500; 0 skips it)")
    burst.add_argument("--burst-threads", type=int, metavar="N", help="client threads posting them (16)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n for n in NAMES if n in (args.names or NAMES)]
    info = machine()
    print(f"machine: {info['cores']} cores, {info['memory_gib']} GiB, Python {info['python']}, {info['cpu']}")
    reports: list[Report] = []
    load = None
    for name in names:
        print(f"\n== {name}{' (quick)' if args.quick else ''}", flush=True)
        started = time.monotonic()
        if name == "cold_start":
            from bench import cold_start

            report = cold_start.run(args.quick)
        elif name == "archive":
            from bench import archive

            report = archive.run(args.quick)
        elif name == "latency":
            from bench import latency

            report, phases, setup = latency.run(args.quick)
            load = (phases, setup)
        elif name == "cost":
            from bench import cost

            report = cost.run(args.quick, load)
        elif name == "burst":
            from bench import burst

            report = burst.run(args.quick, args.burst_jobs, args.burst_auto_jobs, args.burst_threads)
        elif name == "tenant_flood":
            from bench import tenant_flood

            report = tenant_flood.run(args.quick)
        elif name == "status_list":
            from bench import status_list

            report = status_list.run(args.quick)
        else:
            from bench import reliability_load

            report = reliability_load.run(args.quick)
        report.seconds = round(time.monotonic() - started, 1)
        for target in report.targets:
            print(target.line())
        for note in report.notes:
            print(f"  note: {note}")
        print(f"  results: {report.write()} ({report.seconds:.0f} s)", flush=True)
        reports.append(report)
    met = sum(t.met for r in reports for t in r.targets)
    total = sum(len(r.targets) for r in reports)
    print(f"\n{met} of {total} targets met")
    return 0  # benchmarks report; they do not fail


if __name__ == "__main__":
    sys.exit(main())
