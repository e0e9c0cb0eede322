"""``zeroshot-unlearn forget``."""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import InvalidRequestError
from .audit import print_report, run_audit
from ._common import (EXIT_NOT_FORGOTTEN, load_trained, model_options, output_options, parse_budget,
                      parse_classes, parse_overrides, with_class_names)


@dataclass
class _ForgetInputs:
    """What ``forget`` read and checked before any work: the model, the request and its data."""

    model: Any
    request: Any
    """The request checked without its data (``check_request``): requested and every forget class, recipe."""
    overrides: dict
    budget: int | float
    data: Any
    """The --retain-data splits (None in data-free mode)."""
    eval_source: Any
    """The splits Df/Dr and the audit read (--eval-data, else the retained data's)."""
    retain: Any
    checks_test_split: bool
    """Whether the test split goes to the self-check (it holds forget-class images and the check is on)."""

    @property
    def eval_data(self):
        return self.eval_source.test if self.eval_source is not None else None


def _forget_inputs(args) -> _ForgetInputs:
    """Every check of ``forget``, before any data is read or any subset drawn, then the data: a bad input
    is one line and exit 2, and nothing is printed before it."""
    from ..data import load_data, retained_subset
    from ..io import check_output_folder
    from ..plan import check_request
    from ..result import check_save_format

    check_output_folder(Path(args.out), overwrite=args.overwrite)  # the write checks again
    if args.data_free == bool(args.retain_data):
        raise InvalidRequestError("pass --retain-data DATA, or --data-free to forget with no retained data at all"
                                  if not args.data_free else "--data-free reads no retained data: drop --retain-data "
                                  "(--eval-data gives the data for the Df/Dr report)")
    if args.audit and not (args.eval_data or args.retain_data):
        raise InvalidRequestError("--audit needs data with a test split: pass --eval-data DATA")
    budget = parse_budget(args.retain_budget)
    overrides = parse_overrides(args.set)
    if args.depth is not None:
        overrides["depth"] = args.depth
    model = with_class_names(load_trained(args), args.class_names)
    check_save_format(model, args.save_format)
    request = check_request(model, parse_classes(args.classes), recipe=args.recipe, method=args.method,
                            overrides=overrides, seed=args.seed, generator=args.generator, data_free=args.data_free,
                            training_log=args.training_log)
    data = load_data(args.retain_data, model) if args.retain_data else None
    eval_source = load_data(args.eval_data, model) if args.eval_data else data
    # request.forget: classes the model forgot in earlier requests stay out of the retained data too.
    retain = None if data is None else retained_subset(data.require_train(), request.forget, budget, seed=args.seed,
                                                        num_classes=request.num_classes)
    eval_data = eval_source.test if eval_source is not None else None
    has_forget_images = eval_data is not None and bool(set(eval_data.y.tolist()) & set(request.forget))
    checks_test_split = has_forget_images and request.recipe.self_check.enabled
    return _ForgetInputs(model, request, overrides, budget, data, eval_source, retain, checks_test_split)


def cmd_forget(args) -> int:
    from ..api import forget_classes
    from ..audit import AUDIT_COLUMNS
    from ..data import retained_subset
    from ..errors import ForgettingWarning
    from ..io import atomic_dir, write_json
    from ..runtime import current_world
    from ..spec import model_architecture

    inputs = _forget_inputs(args)
    model, out = inputs.model, Path(args.out)
    rank, world_size = current_world()
    say = print if rank == 0 else (lambda *a, **k: None)
    # Printed only once every input check has passed: a refused input leaves nothing on stdout.
    say(f"model: {model_architecture(model)}, {model.pretrained_cfg.get('weights', 'weights of unknown origin')}")
    say(f"recipe: {inputs.request.recipe.name}" + (f" ({inputs.request.recipe_reason})"
                                                    if inputs.request.recipe_reason else " (as asked)"))
    with warnings.catch_warnings():  # --no-strict: the failure is reported below, once, in this command's words
        warnings.simplefilter("ignore", ForgettingWarning)
        result = forget_classes(model, inputs.request.requested, retain=inputs.retain, recipe=args.recipe,
                                method=args.method, overrides=inputs.overrides, seed=args.seed,
                                progress=not args.quiet, device=args.device, generator=args.generator,
                                strict=not args.no_strict, training_log=args.training_log,
                                # the API's own verdict on the test split
                                eval_data=inputs.eval_data if inputs.checks_test_split else None)
    row = result.metrics_row(model, inputs.eval_data)
    say("time per phase: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
        + f"; peak memory {row['peak_memory_gib']:.2f} GiB ({row['peak_memory']})")
    if inputs.eval_data is not None:
        say(f"Df {row['df']:.2f} (original {row['df_original']:.2f}), Dr {row['dr']:.2f} (original "
            f"{row['dr_original']:.2f}) on the test split")
    audited = args.audit and inputs.eval_data is not None
    if audited and rank == 0:
        audit_retain = inputs.retain if inputs.retain is not None else retained_subset(  # the run read no data
            inputs.eval_source.require_train("audit's retained images"), result.forget, inputs.budget, seed=args.seed,
            num_classes=inputs.request.num_classes)
        report = run_audit(model, result.model, result.forget, inputs.eval_source, audit_retain,
                           source=args.eval_data or args.retain_data,
                           reference_path=args.reference, seed=args.seed, quiet=args.quiet,
                           generator=result.generator, recipe=result.recipe, never_learnt=args.never_learnt)
        print_report(report)
        measured = report.metrics_row("unlearned") if hasattr(report, "band") else report.metrics["unlearned"]
        for key in AUDIT_COLUMNS:
            row[key] = measured.get(key)
    # Everything is computed before anything is written: the folder appears complete or not at all.
    # Under torchrun every rank holds the same result and rank 0 alone writes it.
    if rank == 0:
        with atomic_dir(out, overwrite=args.overwrite) as folder:
            result.write_into(folder, format=args.save_format)
            if audited:
                report.save(folder / "audit")
            write_json(folder / "metrics.json", {"suite": str(args.eval_data or args.retain_data), "rows": [row]})
    if world_size > 1:
        import torch.distributed

        torch.distributed.barrier()
    written = ["model.safetensors", "recipe.yaml"] + (["config.json"] if args.save_format == "timm" else []) \
        + (["generator.safetensors"] if result.generator is not None else []) \
        + ["metrics.json"] + (["audit/"] if audited else [])
    say(f"wrote {out}/{', '.join(written)} in {row['time_s']:.1f}s"
        + (f" ({world_size} processes)" if world_size > 1 else ""))
    if not row["forgotten"]:
        if rank == 0:
            print(f"WARNING: classes {result.forget} were NOT forgotten ({'; '.join(row['forgetting_failures'])}). "
                  "The model was written because of --no-strict; metrics.json says forgotten: false", file=sys.stderr)
        return EXIT_NOT_FORGOTTEN
    return 0


EXAMPLES = """examples:
  zeroshot-unlearn forget --model digits_cnn --classes 3 7 --retain-data digits --retain-budget 400 --out out/
  zeroshot-unlearn forget --checkpoint resnet20-12fca82f.th --model cifar10_resnet20 --classes cat horse
      --retain-data retained/ --out out/ --audit   # retained/<class name>/*.png, no cat/ or horse/ folder
"""


class _HelpWithMethods(argparse._HelpAction):
    """``forget --help``: the registered methods are listed from the registry itself, so they are imported (and
    torch with them) only when this help is asked for; every other help stays instant."""

    def __call__(self, parser, namespace, values, option_string=None):
        from ..methods import METHODS

        lines = [f"  {name:<26} {cls.describe()}" for name, cls in sorted(METHODS.items())]
        parser.epilog = (EXAMPLES + "\nmethods (--method NAME; the data each reads; forget-data baselines run only "
                         "from the API or bench):\n" + "\n".join(lines))
        super().__call__(parser, namespace, values, option_string)


def add_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    forget = command("forget", "forget classes from a model and write the new model, its recipe and metrics",
                     add_help=False, epilog=EXAMPLES)
    forget.add_argument("-h", "--help", action=_HelpWithMethods, help="show this help (with the registered methods) "
                                                                      "and exit")
    model_options(forget, model_required=False)
    forget.add_argument("--classes", nargs="+", required=True, metavar="CLASS",
                        help="class ids, or class names where the model carries them (cat horse)")
    forget.add_argument("--retain-data",
                        help="'digits', a folder of *train*/*test*.npz, or an ImageFolder (DIR/<class>/*.png, "
                             "or DIR/train + DIR/test); folders are matched to classes by name or id. Required "
                             "unless --data-free")
    forget.add_argument("--data-free", action="store_true",
                        help="no retained data at all: the default method's data-free mode (generator memories "
                             "stand in for the retained classes)")
    forget.add_argument("--eval-data", help="data whose test split the Df/Dr report (and --audit) use; default: the "
                                            "--retain-data's test split, if it has one")
    forget.add_argument("--class-names", metavar="FILE",
                        help="one class name per line in the model's class order: names for --classes and the "
                             "ImageFolder's folders, saved with the new model")
    forget.add_argument("--retain-budget", default="2500",
                        help="retained images to draw, class-balanced: a count, or a fraction of the training split "
                             "like 0.05")
    forget.add_argument("--recipe", default="auto",
                        help="'auto' (by architecture), a recipe name (`zeroshot-unlearn recipes`) or a YAML path")
    forget.add_argument("--method", default=None, help="a method name (listed below); default: the recipe's method")
    forget.add_argument("--depth", default=None, metavar="{output,representation}",
                        help="how deep the forgetting goes: 'output' (default: fast, at the retained accuracy "
                             "ceiling) or 'representation' (the features forget too, at the price docs/depth.md "
                             "states per recipe family)")
    forget.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="recipe override, repeatable, e.g. --set impair.lr=0.02")
    output_options(forget, out_help="output folder (must be new or empty)")
    forget.add_argument("--save-format", default="native", choices=["native", "timm"],
                        help="'native': model.safetensors with its config and history; 'timm': also timm's "
                             "config.json, so timm.create_model('local-dir:OUT') loads the result (timm models only)")
    forget.add_argument("--audit", action="store_true", help="run the audit right after and write OUT/audit/")
    forget.add_argument("--reference", help="retrain reference checkpoint for the audit (digits: shipped or trained)")
    forget.add_argument("--never-learnt", metavar="DIR", help="--audit at ImageNet size: a folder of classes the model "
                        "never learnt (train/<class>/, test/<class>/), the band its verdicts compare with")
    forget.add_argument("--generator", help="a fitted amortised generator folder (generators/<model-id>/) to reuse")
    forget.add_argument("--training-log", help="the model's training log (NAME.updates/ from train --record-updates), "
                                               "for --method amnesiac")
    forget.add_argument("--device", default="auto", help="'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'")
    forget.add_argument("--no-strict", action="store_true",
                        help="write the model even when the self-check says the classes were not forgotten (its "
                             "figure, or Df on the test split above self_check.max_test_df) or cannot judge the "
                             "model (inconclusive); exit code 3 then, and metrics.json says forgotten: false")
    forget.set_defaults(func=cmd_forget)
