"""``zeroshot-unlearn table``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable


def cmd_table(args) -> int:
    import json

    from ..harness.bench import markdown_table, merge_results, summary_table

    merged = merge_results([json.loads(Path(p).read_text()) for p in args.results])
    print(markdown_table(merged) if args.full else summary_table(merged))
    return 0


def add_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    table = command("table", "one table (means per method) over bench result files of one suite")
    table.add_argument("results", nargs="+", help="results.json files written by bench")
    table.add_argument("--full", action="store_true", help="also the per-request rows")
    table.set_defaults(func=cmd_table)
