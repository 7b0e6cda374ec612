"""`python -m local.provider_emulator`: run the provider emulator until interrupted."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from local.provider_emulator.emulator import ProviderEmulator
from local.provider_emulator.limits import KIE_DOCUMENTED_LIMIT

log = logging.getLogger("local.provider_emulator")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.provider_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8900, help="port to bind; 0 picks a free one (default 8900)")
    parser.add_argument("--job-seconds", type=float, default=5.0, help="time each task takes (default 5)")
    parser.add_argument("--kie-hmac-key", default=None, help="sign Kie callbacks with this webhookHmacKey")
    parser.add_argument(
        "--no-limits",
        action="store_true",
        help="accept every submit (default: Kie's documented 20 per 10 s, 100 in flight)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")
    emulator = ProviderEmulator(
        host=args.host,
        port=args.port,
        job_seconds=args.job_seconds,
        kie_hmac_key=args.kie_hmac_key,
        limits=None if args.no_limits else {"kie": KIE_DOCUMENTED_LIMIT},
    )
    emulator.start()
    log.info("provider emulator running:\n%s", json.dumps(emulator.describe(), indent=2))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
