"""``zeroshot-unlearn generator``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from ._common import HelpFormatter, load_trained, model_options, output_options, parse_overrides


def cmd_generator_fit(args) -> int:
    from ..spec import model_architecture
    from ..augment import Augment
    from ..generators.amortised import fit_amortised, model_id, save_amortised
    from ..io import check_output_folder
    from ..recipes import resolve_recipe

    model = load_trained(args)
    out = Path(args.out) if args.out else Path("generators") / model_id(model)
    check_output_folder(out, overwrite=args.overwrite)
    recipe = resolve_recipe(args.recipe, model_architecture(model), parse_overrides(args.set),
                            input_size=tuple(model.pretrained_cfg.get("input_size") or ()))
    cfg = model.pretrained_cfg
    augment = Augment(recipe.augment, cfg["mean"], cfg["std"], cfg["input_size"][1:])
    generator, card = fit_amortised(model, recipe.generator, augment, steps=args.steps, seed=args.seed,
                                    progress=not args.quiet)
    save_amortised(out, generator, card, overwrite=args.overwrite)
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"fitted a {card['num_classes']}-class generator for {card['model_id']} in {card['fit_seconds']:.1f}s "
          f"({card['generator']['steps']} steps); wrote {out} ({size / 1e6:.2f} MB)")
    return 0


def add_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    gen = command("generator", "amortised anti-memory generators: fit once per model, reuse per request")
    gen_sub = gen.add_subparsers(dest="generator_command", required=True, metavar="COMMAND")
    fit = gen_sub.add_parser("fit", help="fit a class-conditional generator for every class of a model",
                             description="fit a class-conditional generator for every class of a model",
                             formatter_class=HelpFormatter)
    model_options(fit, model_required=True)
    fit.add_argument("--recipe", default="auto", help="recipe whose generator section is used")
    fit.add_argument("--set", action="append", metavar="KEY=VALUE", help="recipe override, e.g. generator.lr=0.02")
    fit.add_argument("--steps", type=int, default=None, help="fitting steps; default: recipe steps x classes / 2")
    output_options(fit, out_help="output folder; default: generators/<model-id>", out_required=False)
    fit.set_defaults(func=cmd_generator_fit)
