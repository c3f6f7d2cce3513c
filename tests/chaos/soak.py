"""Run one chaos scenario by hand, as long as you like.

    python -m tests.chaos.soak --scenario R1 --seconds 600 --seed 7
    python -m tests.chaos.soak --scenario R9 --seconds 300 --seeds 1,2,3,4,5
    python -m tests.chaos.soak --scenario R1 --seconds 120 --tls

Prints the checker report and the verdict of each seed, keeps the history and every process
log under ``--workdir`` (default: a new directory under /tmp), exits 0 when every seed passed,
1 when one failed, 3 when the scenario was skipped (e.g. the cluster has no HA). See
docs/chaos.md for reading the output.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import random
import sys
import tempfile
import time

from tests.chaos import transport
from tests.chaos.scenarios import RunConfig, SkipScenario, all_scenarios, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scenario", required=True, choices=sorted(all_scenarios()))
    parser.add_argument("--seconds", type=float, default=120.0, help="fault phase length")
    parser.add_argument("--seed", type=int, default=None, help="default: a random one, printed")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds, run one by one")
    parser.add_argument("--rate", type=float, default=200.0, help="sends/s per producer")
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--queues", type=int, default=4)
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--workdir", type=pathlib.Path, default=None)
    parser.add_argument("--log-level", default="INFO", help="of the runtime processes")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="the cluster enforces TLS (a self-signed certificate made in the workdir) and "
        "every client of the harness connects over TLS (tests/chaos/transport.py)",
    )
    args = parser.parse_args(argv)
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    if args.seeds:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    else:
        seeds = [args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)]
    base = args.workdir or pathlib.Path(tempfile.mkdtemp(prefix=f"chaos-{args.scenario}-"))
    if args.tls:
        os.environ[transport.ENV] = str(transport.setup(base / "tls"))  # children inherit it
        print(f"TLS: {os.environ[transport.ENV]}", flush=True)
    failed = 0
    for seed in seeds:
        cfg = RunConfig(
            seed=seed,
            seconds=args.seconds,
            workdir=base / f"seed-{seed}",
            producers=args.producers,
            rate=args.rate,
            queues=args.queues,
            drain_timeout=args.drain_timeout,
            log_level=args.log_level,
        )
        print(f"== {args.scenario} seed={seed} workdir={cfg.workdir}", flush=True)
        start = time.monotonic()
        try:
            result = run(args.scenario, cfg)
        except SkipScenario as exc:
            print(f"skipped: {exc}")
            return 3
        print(result.render())
        print(f"took {time.monotonic() - start:.1f}s", flush=True)
        failed += not result.verdict.ok
    print(f"{len(seeds) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
