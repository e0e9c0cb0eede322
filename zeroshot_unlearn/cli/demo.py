"""``zeroshot-unlearn demo``."""

from __future__ import annotations

import argparse
from typing import Callable


def cmd_demo(args) -> int:
    from ..harness.demo import run_demo

    run_demo(args.classes, retain_budget=args.retain_budget, seed=args.seed, progress=not args.quiet)
    return 0


def add_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    demo = command("demo", "forget digits 3 and 7 from the shipped demo model and compare with a retrained model "
                           "(about 5 s on a 2-core CPU)")
    demo.add_argument("--classes", type=int, nargs="+", default=[3, 7], metavar="ID", help="digits to forget")
    demo.add_argument("--retain-budget", type=int, default=400, help="retained images to forget with")
    demo.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result on CPU)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=cmd_demo)
