"""``zeroshot-unlearn audit``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import torch.nn as nn

from ..errors import DataError, InvalidRequestError
from ._common import load_trained, output_options, parse_budget, parse_classes, with_class_names


def at_scale(model: nn.Module) -> bool:
    """Whether ``model`` is audited at ImageNet size (:mod:`zeroshot_unlearn.audit.at_scale`): an input side the
    head-only path serves (the ``imagenet`` recipe's ``min_input_size``)."""
    from ..audit.at_scale import model_side
    from ..recipes import load_recipe

    return model_side(model) >= load_recipe("imagenet").min_input_size


def run_audit(original, unlearned, classes, data, retain, *, source, reference_path, seed, quiet, generator=None,
              recipe=None, compare=None, never_learnt=None):
    from ..audit import audit
    from ..zoo import load_model

    if data.test is None:
        raise DataError("the audit needs a test split in the data (a *test*.npz or DIR/test)")
    if at_scale(original):
        # No retrained ImageNet model can be built here: the references are the never-learnt band and the head
        # that never had the class, every column read from features computed once per backbone.
        from ..audit.at_scale import audit_at_scale

        if reference_path:
            raise InvalidRequestError("--reference: at ImageNet size the audit's references are the never-learnt "
                                      "band (--never-learnt DIR) and the head that never had the class; drop it")
        return audit_at_scale(original, {"unlearned": unlearned, **(compare or {})}, classes,
                              train=data.require_train("audit's training images"), test=data.test,
                              never_learnt=never_learnt, seed=seed, progress=not quiet)
    reference = None
    if reference_path:
        reference = load_model(original.pretrained_cfg["architecture"], reference_path)
    elif str(source) == "digits":  # the demo's data: its retrain reference is shipped or cheap to train
        # The CLI is the one module above both the library and the harness (bench, train, demo); the
        # retrain machinery is the harness's, so this command borrows it for the demo's data only.
        from ..harness.specs import DIGITS_TRAIN
        from ..harness.training import retrain_reference

        reference, _ = retrain_reference("digits_cnn", data.train, classes, DIGITS_TRAIN, progress=not quiet)
    return audit(original, unlearned, forget=classes, train=data.train, test=data.test, retain=retain,
                 reference=reference, generator=generator, recipe=recipe, seed=seed, progress=not quiet,
                 compare=compare)


def load_original(source: str, unlearned: nn.Module, *, trust_checkpoint: bool = False) -> nn.Module:
    """``--original`` as ``forget --model`` takes it: a timm folder (``local-dir:PATH``, ``hf-hub:NAME``, a folder
    with config.json), a zoo name with registered weights (``tf_efficientnet_lite0``, ``digits_cnn``), or a
    checkpoint file of the unlearned model's architecture. Refused if it is another architecture."""
    from ..errors import CheckpointError
    from ..zoo import load_model
    from ..zoo.registry import pretrained_entry
    from ..zoo.timm_format import is_timm_source

    architecture = unlearned.pretrained_cfg["architecture"]
    registered = not Path(source).exists() and (entry := pretrained_entry(source)) is not None \
        and entry.default_checkpoint
    if is_timm_source(source) or registered:  # what forget --model NAME loads, by the same function
        original = load_trained(argparse.Namespace(model=source, checkpoint=None, trust_checkpoint=trust_checkpoint))
    else:
        original = load_model(architecture, source, trust_checkpoint=trust_checkpoint)
    if original.pretrained_cfg.get("architecture") != architecture:
        raise CheckpointError(f"--original {source} is a {original.pretrained_cfg.get('architecture')!r}, the unlearned "
                              f"model a {architecture!r}: audit a model against the one it was made from")
    return original


def print_report(report) -> None:
    from ..audit.report import ROWS

    if hasattr(report, "band"):  # the audit at ImageNet size
        from ..audit.report import scaled_markdown

        print(scaled_markdown(report))
        return
    names = report.model_names()
    width = max(11, *(len(n) + 2 for n in names))
    print(f"{'metric':<42}" + "".join(f"{n:>{width}}" for n in names))
    for key, label, _unit in ROWS:
        values = [report.metrics[n].get(key) for n in names]
        print(f"{label:<42}" + "".join(f"{'–':>{width}}" if v is None else f"{v:>{width}.3f}" if isinstance(v, float)
                                       else f"{v:>{width}}" for v in values))
    for name in report.verdicts:
        for line in report.headline(name):
            print(f"{name}: {line}")
    for name, flag in report.stage_flags.items():  # probes at every stage: does a class linger below the head?
        print(f"{name}: stages: {flag['text']}")
    if report.self_check is not None:
        print(report.self_check["summary"])


def cmd_audit(args) -> int:
    from ..plan import class_ids, forgotten_classes
    from ..data import load_data, retained_subset
    from ..io import check_output_folder
    from ..surgery import model_num_classes
    from ..validate import validate_classes
    from ..zoo import load_model

    out = Path(args.out)
    check_output_folder(out, overwrite=args.overwrite)  # fail before any work; the write checks again
    budget = parse_budget(args.retain_budget)
    unlearned = load_model(args.model, args.unlearned)
    original = with_class_names(load_original(args.original, unlearned, trust_checkpoint=args.trust_checkpoint),
                                args.class_names)
    classes = validate_classes(class_ids(original, parse_classes(args.classes)), model_num_classes(original))
    generator = None
    if args.generator:
        from ..result import load_generator

        generator = load_generator(args.generator, original)
    recipe = None
    unlearned_path = Path(args.unlearned)  # a forget output folder or its model.safetensors
    recipe_file = (unlearned_path if unlearned_path.is_dir() else unlearned_path.parent) / "recipe.yaml"
    if recipe_file.is_file():
        from ..recipes import load_recipe

        recipe = load_recipe(recipe_file)
    if args.never_learnt and not at_scale(original):
        raise InvalidRequestError("--never-learnt is read by the audit at ImageNet size (an input side the recipe "
                                  "'imagenet' serves); at this size the reference is a retrained model (--reference)")
    data = load_data(args.data, original)
    forgotten = sorted(set(classes) | set(forgotten_classes(unlearned)))
    retain = retained_subset(data.require_train("audit's training images"), forgotten, budget,
                             seed=args.seed, num_classes=model_num_classes(original))
    compare = {}
    for path in args.compare or []:
        other = load_model(args.model, path)
        if not set(classes) <= set(forgotten_classes(other)):
            raise InvalidRequestError(f"--compare {path} forgot {forgotten_classes(other) or 'no class'}, not the audited "
                               f"classes {classes}: compare unlearned models of the same request")
        last = (getattr(other, "unlearning_history", None) or [{}])[-1]
        label = f"unlearned (depth={last['depth']})" if last.get("depth") else f"unlearned ({Path(path).parent.name})"
        while label in compare or label == "unlearned":
            label += "'"
        compare[label] = other
    report = run_audit(original, unlearned, classes, data, retain, source=args.data, reference_path=args.reference,
                       seed=args.seed, quiet=args.quiet, generator=generator, recipe=recipe, compare=compare,
                       never_learnt=args.never_learnt)
    report.save(out, overwrite=args.overwrite)
    print_report(report)
    print(f"wrote {out}/report.json and {out}/report.html ({report.meta['seconds']}s)")
    return 0


def add_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    aud = command("audit", "measure forgetting (MIA, probe, rebound, relearn) and write report.json + report.html")
    aud.add_argument("--model", default=None, help="architecture; default: read from the unlearned file")
    aud.add_argument("--original", required=True, help="the original model as forget --model takes it: a timm folder "
                     "(local-dir:PATH, hf-hub:NAME), a zoo name with registered weights, or its checkpoint file")
    aud.add_argument("--unlearned", required=True, help="the unlearned model: forget's OUT folder or its model.safetensors")
    aud.add_argument("--classes", nargs="+", required=True, metavar="CLASS", help="the forgotten class ids or names")
    aud.add_argument("--data", required=True, help="'digits', a folder of *train*/*test*.npz, or an ImageFolder "
                                                   "with train/ and test/")
    aud.add_argument("--class-names", metavar="FILE", help="one class name per line, for ImageFolder names")
    aud.add_argument("--retain-budget", default="2500", help="retained images for the rebound fine-tune")
    aud.add_argument("--reference", help="retrain reference checkpoint (digits: shipped or trained and cached)")
    aud.add_argument("--generator", help="the run's generator for the anti-memory grid: the forget OUT folder "
                                         "(generator.safetensors + recipe.yaml) or an amortised generator folder")
    aud.add_argument("--compare", nargs="+", metavar="MODEL", help="other unlearned models of the same request (e.g. "
                     "the other --depth's OUT/model.safetensors), measured alike and placed beside it")
    aud.add_argument("--never-learnt", metavar="DIR", help="at ImageNet size: a folder of classes the model never "
                     "learnt (train/<class>/, test/<class>/), each read and relearnt in the forget class's place: the "
                     "band the verdicts compare with")
    aud.add_argument("--trust-checkpoint", action="store_true", help="open pickled checkpoints that safe loading "
                                                                     "refuses")
    output_options(aud, out_help="output folder (must be new or empty)")
    aud.set_defaults(func=cmd_audit)
