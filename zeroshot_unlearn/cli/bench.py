"""``zeroshot-unlearn bench``."""

from __future__ import annotations

import argparse
from typing import Callable

from ..errors import InvalidRequestError
from ._common import parse_budget, parse_overrides


def cmd_bench(args) -> int:
    from ..harness.bench import markdown_table, parse_requests, run_bench, save_results
    from ..zoo import load_model

    references = {}
    for spec in args.reference or []:
        classes, _, path = spec.partition(":")
        if not path:
            raise InvalidRequestError(f"--reference must look like CLASSES:PATH (e.g. 3,7:retrain.th), got {spec!r}")
        references[tuple(sorted(int(c) for c in classes.split(",")))] = load_model(args.reference_model, path)
    budget = None
    if args.retain_budget:
        budget = parse_budget(args.retain_budget)
    from ..methods import list_methods

    methods = [m for spec in args.methods for m in spec.split(",") if m]
    if methods == ["all"]:
        methods = list(list_methods())
    results = run_bench(args.suite, data_dir=args.data_dir, requests=parse_requests(args.requests),
                        retain_budget=budget, methods=methods, references=references, seed=args.seed,
                        audit=args.audit or False,
                        overrides={**parse_overrides(args.set), **({"depth": args.depth} if args.depth else {})},
                        progress=not args.quiet,
                        results_file=args.out, resume=args.resume, generator=args.generator,
                        training_log=args.training_log, seeds=args.seeds)
    save_results(results, args.out, args.markdown)
    print(markdown_table(results))
    return 0


def add_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    bench = command("bench", "run the protocol requests of a suite and write results.json + a markdown table")
    bench.add_argument("--suite", required=True,
                       help="digits, cifar10-resnet20/32/44 (public checkpoints in --data-dir), cifar10-NAME for "
                            "a timm family this project trains (NAME from `zeroshot-unlearn train`; trained once "
                            "and cached), cifar100-resnet20/resnet56/resnet10t (the shipped CIFAR-100 models; "
                            "--data-dir holds cifar100_*.npz or a cifar100/ folder), or imagenet-efficientnet_lite0 "
                            "and imagenet-efficientnet_lite0-nette (the real ImageNet-1k Lite0, extra [imagenet]; "
                            "--data-dir holds imagenet-subset/; the second retains the Imagenette classes only)")
    bench.add_argument("--data-dir", default=None, help="the benchmark data folder (see `fetch-data`)")
    bench.add_argument("--requests", default="protocol", help="'protocol' (the suite's own requests, PROTOCOL.md) or requests like '3,7;0;1,9'")
    bench.add_argument("--retain-budget", default=None, help="retained images per request; default: the suite's 5%%")
    bench.add_argument("--methods", nargs="+", default=["anti_memory"],
                       help="method names (space or comma separated), or 'all' for every registered method")
    bench.add_argument("--reference", action="append", metavar="CLASSES:PATH",
                       help="retrain reference for a request, e.g. 3,7:path/resnet20-retrain-without-3-7.th")
    bench.add_argument("--reference-model", default="cifar10_resnet20", help="architecture of the --reference files")
    bench.add_argument("--seed", type=int, default=0, help="random seed")
    bench.add_argument("--seeds", type=int, default=1, metavar="N",
                       help="run every method with N unlearning seeds (SEED .. SEED+N-1; each its own retained subset) "
                            "and report the mean and spread over them; the original and the reference once")
    bench.add_argument("--out", default="results.json", help="results file (JSON; rewritten after each request)")
    bench.add_argument("--markdown", default=None, help="markdown table path; default: OUT with .md")
    bench.add_argument("--audit", nargs="?", const="full", choices=["full", "light"], default=None,
                       help="add the audit columns: 'full' (MIA, probe-Df, rebound, relearn, AIN; the value when "
                            "given alone) or 'light' (MIA and rebound only, for sweeps over every request)")
    bench.add_argument("--resume", action="store_true",
                       help="keep the requests already in --out (written after each request) if its settings match")
    bench.add_argument("--set", action="append", metavar="KEY=VALUE", help="recipe override for every method")
    bench.add_argument("--depth", default=None, metavar="{output,representation}",
                       help="forgetting depth for every method's recipe (same as --set depth=...)")
    bench.add_argument("--generator", default=None,
                       help="a fitted generator folder (generator fit) for the methods that use one: the amortised "
                            "setting, with the recipe's amortised schedule")
    bench.add_argument("--training-log", default=None,
                       help="the suite model's training log (train --record-updates), for the methods that read one "
                            "(amnesiac)")
    bench.add_argument("--quiet", action="store_true", help="no progress bars")
    bench.set_defaults(func=cmd_bench)
