"""Command line: ``zeroshot-unlearn {demo,forget,audit,info,bench,generator,table,recipes,train,fetch-data}``.

Exit codes: 0 success, 2 usage or validation error, 1 runtime failure (a run whose checks say
the classes were not forgotten included), 3 ``forget --no-strict`` wrote such a model anyway.
Errors print as one line; ``--debug`` shows the traceback. Every command validates its arguments before it reads
data or trains anything. Nothing here imports torch until a command runs, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import (DataError, DivergenceError, ForgettingFailedError, InvalidRequestError, OutputError,
                     UnlearnError)

EXIT_NOT_FORGOTTEN = 3
"""``forget --no-strict`` wrote the model, but its checks say the classes were not forgotten."""

# The registered methods and the data each reads, for `forget --help` without importing torch;
# tests/test_cli.py checks this table against list_methods().
METHOD_HELP = {
    "amnesiac": "retain, training_log (baseline: undoes the logged training steps; train --record-updates)",
    "anti_memory": "retain (default: anti-memory generator, impair, repair)",
    "anti_memory_data_free": "none (the default's mode when no retained data is given)",
    "anti_memory_features": "retain (the default plus representation terms)",
    "anti_memory_no_generator": "retain (the default's schedule without anti-memories)",
    "bad_teacher": "forget, retain (baseline)",
    "finetune": "retain (baseline)",
    "gkt": "none (gated knowledge transfer; trains a new student)",
    "gradient_ascent": "forget, retain (baseline)",
    "logit_mask": "none (hides the classes at the output only)",
    "masked_kd": "retain (distillation from the masked teacher)",
    "random_label": "forget, retain (baseline)",
    "retrain": "retain (re-initialise and train on the retained data)",
    "scrub": "forget, retain (baseline)",
    "ssd": "forget, retain (baseline)",
    "unsir": "retain (UNSIR as published)",
}

FORGET_EPILOG = """examples:
  zeroshot-unlearn forget --model digits_cnn --classes 3 7 --retain-data digits --retain-budget 400 --out out/
  zeroshot-unlearn forget --checkpoint resnet20-12fca82f.th --model cifar10_resnet20 --classes cat horse
      --retain-data retained/ --out out/ --audit   # retained/<class name>/*.png, no cat/ or horse/ folder

methods (--method NAME; the data each reads; forget-data baselines run only from the API or bench):
""" + "\n".join(f"  {name:<26} {needs}" for name, needs in METHOD_HELP.items())


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's layout and appends each option's default where it has a meaningful one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("%(default)" in text or not action.option_strings or action.default in (None, False)
                or action.default is argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


def _budget(text: str) -> int | float:
    """``2500`` -> 2500 images; ``0.05`` -> 5% of the training split; anything else is refused here."""
    try:
        value: int | float = float(text) if "." in text else int(text)
    except ValueError:
        raise InvalidRequestError(f"--retain-budget must be a count (2500) or a fraction (0.05), got {text!r}") from None
    if value <= 0 or (isinstance(value, float) and value > 1):
        raise InvalidRequestError(f"--retain-budget must be a positive count (2500) or a fraction in (0, 1] (0.05), "
                                  f"got {text!r}")
    return value


def _class_args(values: list[str]) -> list[int | str]:
    """``--classes 3 7`` or ``--classes cat horse``: numbers become ids, the rest stay names for the model."""
    return [int(v) if v.lstrip("-").isdigit() else v for v in values]


def _overrides(pairs: list[str] | None) -> dict:
    from .recipes import parse_override

    return dict(parse_override(p) for p in pairs or [])


def cmd_demo(args) -> int:
    from .harness.demo import run_demo

    run_demo(args.classes, retain_budget=args.retain_budget, seed=args.seed, progress=not args.quiet)
    return 0


@dataclass
class _ForgetInputs:
    """What ``forget`` read and checked before any work: the model, the request and its data."""

    model: Any
    requested: list[int]
    overrides: dict
    budget: int | float
    data: Any
    """The --retain-data splits (None in data-free mode)."""
    evaluation_data: Any
    """The splits Df/Dr and the audit read (--eval-data, else the retained data's)."""
    retain: Any
    checks_test_split: bool
    """Whether the test split goes to the self-check (it holds forget-class images and the check is on)."""

    @property
    def evaluation(self):
        return self.evaluation_data.test if self.evaluation_data is not None else None


def _forget_inputs(args) -> _ForgetInputs:
    """Every check of ``forget``, before any data is read or any subset drawn, then the data: a bad input
    is one line and exit 2, and nothing is printed before it."""
    from .api import _check_request, check_save_format, forgotten_classes
    from .data import load_data, retained_subset
    from .io import check_output_folder
    from .surgery import model_num_classes

    check_output_folder(Path(args.out), overwrite=args.overwrite)  # the write checks again
    if args.data_free == bool(args.retain_data):
        raise InvalidRequestError("pass --retain-data DATA, or --data-free to forget with no retained data at all"
                                  if not args.data_free else "--data-free reads no retained data: drop --retain-data "
                                  "(--eval-data gives the data for the Df/Dr report)")
    if args.audit and not (args.eval_data or args.retain_data):
        raise InvalidRequestError("--audit needs data with a test split: pass --eval-data DATA")
    budget = _budget(args.retain_budget)
    overrides = _overrides(args.set)
    if args.depth is not None:
        overrides["depth"] = args.depth
    model = _with_class_names(_load_trained(args), args.class_names)
    check_save_format(model, args.save_format)
    request = _check_request(model, _class_args(args.classes), recipe=args.recipe, method=args.method,
                             overrides=overrides, seed=args.seed, generator=args.generator, data_free=args.data_free,
                             forget_data_given=False, training_log=args.training_log)
    requested = request.requested
    data = load_data(args.retain_data, model) if args.retain_data else None
    evaluation_data = load_data(args.eval_data, model) if args.eval_data else data
    # Classes the model forgot in earlier requests stay out of the retained data too.
    every_forget_class = sorted(set(requested) | set(forgotten_classes(model)))
    retain = None if data is None else retained_subset(data.train, every_forget_class, budget, seed=args.seed,
                                                        num_classes=model_num_classes(model))
    evaluation = evaluation_data.test if evaluation_data is not None else None
    has_forget_images = evaluation is not None and bool(set(evaluation.y.tolist()) & set(every_forget_class))
    checks_test_split = has_forget_images and request.recipe.self_check.enabled
    return _ForgetInputs(model, requested, overrides, budget, data, evaluation_data, retain, checks_test_split)


def _forget_row(args, inputs: _ForgetInputs, result, seconds: float, failures: list[str], world_size: int,
                say) -> dict:
    """The metrics.json row of a forget run: the request, its time per phase and memory, its self-check and,
    with a test split, Df and Dr beside the original's."""
    from .evaluation import forget_retain_accuracy, original_columns

    check = result.self_check
    peak = _peak_memory_gib(result.history[-1]["device"])
    say("time per phase: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
        + f"; peak memory {peak['gib']:.2f} GiB ({peak['what']})")
    row = {"method": result.method, "classes": result.forget, "depth": result.recipe.depth,
           "time_s": round(seconds, 2), "peak_memory_gib": round(peak["gib"], 3), "peak_memory": peak["what"],
           "world_size": world_size, "device": result.history[-1]["device"],
           "gradient_sync": result.history[-1]["gradient_sync"],
           "retained_images": result.retained_images, "forget_images_used": result.forget_images_used,
           "data_free": args.data_free,
           "timings": {k: round(v, 2) for k, v in result.timings.items()},
           "self_check": check.as_dict() if check is not None else None}
    if inputs.evaluation is not None:
        df, dr = forget_retain_accuracy(result.model, inputs.evaluation, result.forget)
        originals = original_columns(inputs.model, inputs.evaluation, result.forget)
        row.update(df=round(df, 2), dr=round(dr, 2), dr_retrain=None,
                   **{key: round(value, 2) for key, value in originals.items()})
        say(f"Df {df:.2f} (original {originals['df_original']:.2f}), Dr {dr:.2f} (original "
            f"{originals['dr_original']:.2f}) on the test split")
    row["forgotten"] = not failures
    row["forgetting_failures"] = failures
    return row


def cmd_forget(args) -> int:
    from .api import ForgettingWarning, forget_classes, model_architecture
    from .audit import AUDIT_COLUMNS
    from .data import retained_subset
    from .io import atomic_dir, write_json
    from .runtime import current_world
    from .surgery import model_num_classes

    inputs = _forget_inputs(args)
    model, out = inputs.model, Path(args.out)
    rank, world_size = current_world()
    say = print if rank == 0 else (lambda *a, **k: None)
    # Printed only once every input check has passed: a refused input leaves nothing on stdout.
    say(f"model: {model_architecture(model)}, {model.pretrained_cfg.get('weights', 'weights of unknown origin')}")
    start = time.perf_counter()
    with warnings.catch_warnings():  # --no-strict: the failure is reported below, once, in this command's words
        warnings.simplefilter("ignore", ForgettingWarning)
        result = forget_classes(model, inputs.requested, retain=inputs.retain, recipe=args.recipe,
                                method=args.method, overrides=inputs.overrides, seed=args.seed,
                                progress=not args.quiet, device=args.device, generator=args.generator,
                                strict=not args.no_strict, training_log=args.training_log,
                                # the API's own verdict on the test split
                                check_data=inputs.evaluation if inputs.checks_test_split else None)
    seconds = time.perf_counter() - start
    check = result.self_check
    failures = [] if check is None or check.passed is not False else [f"self-check: {check.describe()}"]
    if check is not None and check.passed is None:
        failures.append(f"self-check inconclusive: {check.describe()}")
    row = _forget_row(args, inputs, result, seconds, failures, world_size, say)
    audited = args.audit and inputs.evaluation is not None
    if audited and rank == 0:
        audit_retain = inputs.retain if inputs.retain is not None else retained_subset(  # the run read no data
            inputs.evaluation_data.train, result.forget, inputs.budget, seed=args.seed,
            num_classes=model_num_classes(model))
        report = _run_audit(model, result.model, result.forget, inputs.evaluation_data, audit_retain,
                            source=args.eval_data or args.retain_data,
                            reference_path=args.reference, seed=args.seed, quiet=args.quiet,
                            generator=result.generator, recipe=result.recipe)
        _print_audit(report)
        for key in AUDIT_COLUMNS:
            row[key] = report.metrics["unlearned"].get(key)
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
    say(f"wrote {out}/{', '.join(written)} in {seconds:.1f}s" + (f" ({world_size} processes)" if world_size > 1 else ""))
    if failures:
        if rank == 0:
            print(f"WARNING: classes {result.forget} were NOT forgotten ({'; '.join(failures)}). The model was "
                  "written because of --no-strict; metrics.json says forgotten: false", file=sys.stderr)
        return EXIT_NOT_FORGOTTEN
    return 0


def _peak_memory_gib(device: str) -> dict:
    """The run's peak memory: on CUDA the device's allocated peak, on the CPU this process's resident peak."""
    import torch

    if device.startswith("cuda"):
        return {"gib": torch.cuda.max_memory_allocated(torch.device(device)) / 2**30, "what": f"allocated on {device}"}
    import resource

    # ru_maxrss is in KiB on Linux (bytes on macOS)
    scale = 1 if sys.platform == "darwin" else 1024
    return {"gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**30,
            "what": "resident, this process"}


def _run_audit(original, unlearned, classes, data, retain, *, source, reference_path, seed, quiet, generator=None,
               recipe=None, compare=None):
    from .audit import audit
    from .zoo import load_model

    if data.test is None:
        raise DataError("the audit needs a test split in the data (a *test*.npz or DIR/test)")
    reference = None
    if reference_path:
        reference = load_model(original.pretrained_cfg["architecture"], reference_path)
    elif str(source) == "digits":  # the demo's data: its retrain reference is shipped or cheap to train
        # The CLI is the one module above both the library and the harness (bench, train, demo); the
        # retrain machinery is the harness's, so this command borrows it for the demo's data only.
        from .harness.specs import DIGITS_TRAIN
        from .harness.training import retrain_reference

        reference, _ = retrain_reference("digits_cnn", data.train, classes, DIGITS_TRAIN, progress=not quiet)
    return audit(original, unlearned, forget=classes, train=data.train, test=data.test, retain=retain,
                 reference=reference, generator=generator, recipe=recipe, seed=seed, progress=not quiet,
                 compare=compare)


def _print_audit(report) -> None:
    from .audit.report import ROWS

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
    if report.self_check is not None:
        print(report.self_check["summary"])


def cmd_audit(args) -> int:
    from .api import class_ids, forgotten_classes
    from .data import load_data, retained_subset
    from .io import check_output_folder
    from .surgery import model_num_classes
    from .validate import validate_classes
    from .zoo import load_model

    out = Path(args.out)
    check_output_folder(out, overwrite=args.overwrite)  # fail before any work; the write checks again
    budget = _budget(args.retain_budget)
    unlearned = load_model(args.model, args.unlearned)
    original = _with_class_names(load_model(unlearned.pretrained_cfg["architecture"], args.original,
                                            trust_checkpoint=args.trust_checkpoint), args.class_names)
    classes = validate_classes(class_ids(original, _class_args(args.classes)), model_num_classes(original))
    generator = None
    if args.generator:
        from .api import load_generator

        generator = load_generator(args.generator, original)
    recipe = None
    unlearned_path = Path(args.unlearned)  # a forget output folder or its model.safetensors
    recipe_file = (unlearned_path if unlearned_path.is_dir() else unlearned_path.parent) / "recipe.yaml"
    if recipe_file.is_file():
        from .recipes import load_recipe

        recipe = load_recipe(recipe_file)
    data = load_data(args.data, original)
    retain = retained_subset(data.train, sorted(set(classes) | set(forgotten_classes(unlearned))), budget,
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
    report = _run_audit(original, unlearned, classes, data, retain, source=args.data, reference_path=args.reference,
                        seed=args.seed, quiet=args.quiet, generator=generator, recipe=recipe, compare=compare)
    report.save(out, overwrite=args.overwrite)
    _print_audit(report)
    print(f"wrote {out}/report.json and {out}/report.html ({report.meta['seconds']}s)")
    return 0


def cmd_bench(args) -> int:
    from .harness.bench import markdown_table, parse_requests, run_bench, save_results
    from .zoo import load_model

    references = {}
    for spec in args.reference or []:
        classes, _, path = spec.partition(":")
        if not path:
            raise InvalidRequestError(f"--reference must look like CLASSES:PATH (e.g. 3,7:retrain.th), got {spec!r}")
        references[tuple(sorted(int(c) for c in classes.split(",")))] = load_model(args.reference_model, path)
    budget = None
    if args.retain_budget:
        budget = _budget(args.retain_budget)
    from .methods import list_methods

    methods = [m for spec in args.methods for m in spec.split(",") if m]
    if methods == ["all"]:
        methods = list(list_methods())
    results = run_bench(args.suite, data_dir=args.data_dir, requests=parse_requests(args.requests),
                        retain_budget=budget, methods=methods, references=references, seed=args.seed,
                        audit=args.audit or False,
                        overrides={**_overrides(args.set), **({"depth": args.depth} if args.depth else {})},
                        progress=not args.quiet,
                        results_file=args.out, resume=args.resume, generator=args.generator,
                        training_log=args.training_log, seeds=args.seeds)
    save_results(results, args.out, args.markdown)
    print(markdown_table(results))
    return 0


def _with_class_names(model, class_names_file: str | None):
    """The model with ``--class-names`` as its label names (they travel into the files it is saved to)."""
    if class_names_file is None:
        return model
    from .data import read_class_names
    from .surgery import model_num_classes

    names = read_class_names(class_names_file)
    if len(names) != model_num_classes(model) or len(set(names)) != len(names):
        raise InvalidRequestError(f"{class_names_file} holds {len(names)} names ({len(set(names))} distinct); the "
                                  f"model has {model_num_classes(model)} classes: give one distinct name per class")
    model.pretrained_cfg["label_names"] = names
    return model


def _load_trained(args):
    """The model of ``--model``/``--checkpoint``; a model with no checkpoint and no registered one is refused."""
    from .zoo import load_model
    from .zoo.registry import pretrained_entry
    from .zoo.timm_format import is_timm_source

    if args.model is None and args.checkpoint is None:
        raise InvalidRequestError("pass --model NAME, --checkpoint FILE, or both (a .safetensors written by this "
                                  "library names its architecture)")
    if args.checkpoint is None and not is_timm_source(args.model):
        entry = pretrained_entry(args.model)
        if entry is None or entry.default_checkpoint is None:
            raise InvalidRequestError(f"--checkpoint is required: {args.model!r} has no registered trained checkpoint, and "
                               "forgetting classes needs a trained model")
    return load_model(args.model, args.checkpoint, pretrained=args.checkpoint is None,
                      trust_checkpoint=args.trust_checkpoint)


def cmd_info(args) -> int:
    import json

    from .api import forgotten_classes, model_architecture
    from .data.names import display_names_of, label_names_of
    from .recipes import resolve_recipe_name
    from .surgery import model_num_classes
    from .zoo import load_model
    from .zoo.timm_format import is_timm_source

    target = args.target
    if is_timm_source(target):
        model = load_model(target)
    elif Path(target).exists():
        model = load_model(args.model, target, trust_checkpoint=args.trust_checkpoint)
    else:
        model = load_model(target, pretrained=True)
    cfg = model.pretrained_cfg
    architecture = model_architecture(model)
    num_classes = model_num_classes(model)
    names = label_names_of(model)
    shown = display_names_of(model)
    forgotten = forgotten_classes(model)
    info = {"architecture": architecture, "num_classes": num_classes,
            "classes": [{"id": c, "name": names[c] if names else None,
                         "description": shown[c] if shown and shown[c] != names[c] else None, "forgotten": c in forgotten}
                        for c in range(num_classes)],
            "input_size": list(cfg.get("input_size") or []), "mean": list(cfg.get("mean") or []),
            "std": list(cfg.get("std") or []), "checkpoint_sha256": cfg.get("checkpoint_sha256"),
            "recipe": resolve_recipe_name(architecture),
            "unlearning_history": list(getattr(model, "unlearning_history", None) or [])}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"architecture   {architecture}" + (f" (sha256 {info['checkpoint_sha256'][:12]})"
                                                if info["checkpoint_sha256"] else ""))
    print(f"input          {tuple(info['input_size'])}, mean {tuple(info['mean'])}, std {tuple(info['std'])}")
    print(f"recipe (auto)  {info['recipe']}")
    print(f"classes        {num_classes}" + ("" if names else " (no class names; --class-names FILE adds them)"))
    for entry in info["classes"]:
        print(f"  {entry['id']:>4}  {entry['name'] or '':<20}{entry['description'] or '':<24}"
              f"{'  forgotten' if entry['forgotten'] else ''}".rstrip())
    history = info["unlearning_history"]
    print(f"unlearning     {len(history)} request(s)" + (":" if history else " (not unlearned by this library)"))
    for entry in history:
        check = entry.get("self_check") or {}
        verdict = {True: "passed", False: "FAILED", None: "inconclusive"}[check.get("passed")] if check else "off"
        print(f"  {entry.get('time', '?')}  forgot {entry.get('requested')} (all forgotten: {entry.get('classes')}) "
              f"with {entry.get('method')}, recipe {entry.get('recipe')}, seed {entry.get('seed')}, "
              f"{entry.get('retained_images')} retained images, {entry.get('forget_images_used')} forget images, "
              f"self-check {verdict}")
    return 0


def cmd_generator_fit(args) -> int:
    from .api import model_architecture
    from .augment import Augment
    from .generators.amortised import fit_amortised, model_id, save_amortised
    from .io import check_output_folder
    from .recipes import resolve_recipe

    model = _load_trained(args)
    out = Path(args.out) if args.out else Path("generators") / model_id(model)
    check_output_folder(out, overwrite=args.overwrite)
    recipe = resolve_recipe(args.recipe, model_architecture(model), _overrides(args.set))
    cfg = model.pretrained_cfg
    augment = Augment(recipe.augment, cfg["mean"], cfg["std"], cfg["input_size"][1:])
    generator, card = fit_amortised(model, recipe.generator, augment, steps=args.steps, seed=args.seed,
                                    progress=not args.quiet)
    save_amortised(out, generator, card, overwrite=args.overwrite)
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"fitted a {card['num_classes']}-class generator for {card['model_id']} in {card['fit_seconds']:.1f}s "
          f"({card['generator']['steps']} steps); wrote {out} ({size / 1e6:.2f} MB)")
    return 0


def cmd_table(args) -> int:
    import json

    from .harness.bench import markdown_table, merge_results, summary_table

    merged = merge_results([json.loads(Path(p).read_text()) for p in args.results])
    print(markdown_table(merged) if args.full else summary_table(merged))
    return 0


def cmd_recipes(args) -> int:
    from .recipes import list_recipes, load_recipe

    if args.show:
        import yaml

        from .settings import SECTIONS

        recipe = load_recipe(args.show)
        data = recipe.to_dict()
        for name in sorted(SECTIONS):
            data.setdefault(name, recipe.section(name).to_dict())
        print(yaml.safe_dump(data, sort_keys=False), end="")
        return 0
    recipes = list_recipes()
    width = max(len(", ".join(patterns)) for patterns in recipes.values())
    for name, patterns in recipes.items():
        print(f"{name:<14} matches {', '.join(patterns):<{width}}  {load_recipe(name).description}")
    return 0


def cmd_train(args) -> int:
    import dataclasses
    import shutil

    from .data import load_data
    from .harness.specs import get_train_spec
    from .harness.training import retrain_checkpoint, train_checkpoint
    from .io import atomic_path
    from .runtime import resolve_device

    spec = get_train_spec(args.model)
    if (spec.data == "digits") != (args.data == "digits"):
        wanted = {"digits": "'digits'", "cifar100": "a CIFAR-100 folder (cifar100_*.npz)"}.get(
            spec.data, "a CIFAR-10 folder (cifar10_*.npz) or an ImageFolder tree")
        raise DataError(f"{spec.name} is trained on {spec.data}: pass --data {wanted}")
    if args.epochs is not None:
        spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, epochs=args.epochs))
    if args.out is not None and Path(args.out).exists() and not args.overwrite:
        raise OutputError(f"{args.out} exists; pass --overwrite to replace it")
    if args.without:
        if args.record_updates:
            raise InvalidRequestError("--record-updates records the original's training; drop it with --without")
        unknown = sorted(set(args.without) - set(range(spec.num_classes)))
        if unknown:
            raise InvalidRequestError(f"--without {unknown}: {spec.name} has classes 0-{spec.num_classes - 1}")
    resolve_device(args.device)
    data = load_data(args.data, spec.build())
    if len(data.classes) != spec.num_classes:
        raise DataError(f"{spec.name} has a {spec.num_classes}-way head and {args.data} holds {len(data.classes)} "
                        f"classes: pass {spec.data} data")
    state_dir = Path(args.state_dir) if args.state_dir else None
    if args.without:
        trained = retrain_checkpoint(spec, data, args.without, seed=args.seed, progress=not args.quiet,
                                     state_dir=state_dir, device=args.device)
    else:
        trained = train_checkpoint(spec, data, seed=args.seed, progress=not args.quiet,
                                   record_updates=args.record_updates, state_dir=state_dir, device=args.device)
    where = trained.path
    if args.out is not None:
        for source, target in ((trained.path, Path(args.out)),
                               (trained.path.with_suffix(".json"), Path(args.out).with_suffix(".json"))):
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
        if args.record_updates:
            from .io import atomic_dir
            from .training_log import log_folder

            with atomic_dir(log_folder(args.out), overwrite=args.overwrite) as tmp:
                shutil.copytree(log_folder(trained.path), tmp, dirs_exist_ok=True)
        where = Path(args.out)
    card = trained.card
    accuracy = (f"test accuracy {card['test_accuracy']}%" if not args.without else
                f"retained-class test accuracy {card['test_accuracy_retained']}%, forget classes "
                f"{card['test_accuracy_forget']}%")
    print(f"{spec.name}: {accuracy} ({card['train_images']} training images, {card['train']['epochs']} epochs, "
          f"trained in {card['train_seconds']}s); checkpoint {where}")
    if args.record_updates:
        log = card["training_log"]
        print(f"training log {where.with_suffix('.updates')}: {log['steps']} steps, {log['bytes'] / 1e6:.1f} MB "
              f"({log['mb_per_epoch']} MB per epoch)")
    return 0


def cmd_fetch_data(args) -> int:
    from .data.benchmark import fetch_benchmark_data

    folder = fetch_benchmark_data(args.out, download_root=args.download_root)
    print(f"wrote the benchmark data folder {folder} (cifar10_test.npz, cifar10_train_subset.npz, checkpoints/); "
          f"run the tests with ZEROSHOT_UNLEARN_SHARED={folder.parent} if it is not ../shared/data")
    return 0


def _model_options(command: argparse.ArgumentParser, *, model_required: bool) -> None:
    command.add_argument("--model", required=model_required,
                         help="a zoo name (cifar10_resnet20/32/44/56, digits_cnn), any timm model name, or a "
                              "model in timm's format: local-dir:PATH, hf-hub:NAME (from the local cache) or "
                              "the folder's path" + ("" if model_required else "; default: read from the checkpoint"))
    command.add_argument("--checkpoint", help="checkpoint file (.th/.pth/.safetensors) or the output folder of an "
                         "earlier forget; default: the model's registered checkpoint (digits_cnn: the shipped demo "
                         "checkpoint)")
    command.add_argument("--trust-checkpoint", action="store_true",
                         help="open pickled checkpoints that safe loading (weights_only) refuses; runs code from the "
                              "file")


def _output_options(command: argparse.ArgumentParser, *, out_help: str, out_required: bool = True,
                    seed_help: str = "random seed (same seed, same result on CPU)") -> None:
    """--seed, --out, --overwrite and --quiet, which every command that writes something takes."""
    command.add_argument("--seed", type=int, default=0, help=seed_help)
    command.add_argument("--out", required=out_required, default=None, help=out_help)
    command.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty (or over an "
                                                                  "existing) --out")
    command.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_demo_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    demo = command("demo", "forget digits 3 and 7 from the shipped demo model and compare with a retrained model "
                           "(about 5 s on a 2-core CPU)")
    demo.add_argument("--classes", type=int, nargs="+", default=[3, 7], metavar="ID", help="digits to forget")
    demo.add_argument("--retain-budget", type=int, default=400, help="retained images to forget with")
    demo.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result on CPU)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=cmd_demo)


def _add_forget_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    forget = command("forget", "forget classes from a model and write the new model, its recipe and metrics",
                     epilog=FORGET_EPILOG)
    _model_options(forget, model_required=False)
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
    _output_options(forget, out_help="output folder (must be new or empty)")
    forget.add_argument("--save-format", default="native", choices=["native", "timm"],
                        help="'native': model.safetensors with its config and history; 'timm': also timm's "
                             "config.json, so timm.create_model('local-dir:OUT') loads the result (timm models only)")
    forget.add_argument("--audit", action="store_true", help="run the audit right after and write OUT/audit/")
    forget.add_argument("--reference", help="retrain reference checkpoint for the audit (digits: shipped or trained)")
    forget.add_argument("--generator", help="a fitted amortised generator folder (generators/<model-id>/) to reuse")
    forget.add_argument("--training-log", help="the model's training log (NAME.updates/ from train --record-updates), "
                                               "for --method amnesiac")
    forget.add_argument("--device", default="auto", help="'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'")
    forget.add_argument("--no-strict", action="store_true",
                        help="write the model even when the self-check says the classes were not forgotten (its "
                             "figure, or Df on the test split above self_check.max_test_df) or cannot judge the "
                             "model (inconclusive); exit code 3 then, and metrics.json says forgotten: false")
    forget.set_defaults(func=cmd_forget)


def _add_audit_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    aud = command("audit", "measure forgetting (MIA, probe, rebound, relearn) and write report.json + report.html")
    aud.add_argument("--model", default=None, help="architecture; default: read from the unlearned file")
    aud.add_argument("--original", required=True, help="the original model's checkpoint")
    aud.add_argument("--unlearned", required=True, help="the unlearned OUT/model.safetensors")
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
    aud.add_argument("--trust-checkpoint", action="store_true", help="open pickled checkpoints that safe loading "
                                                                     "refuses")
    _output_options(aud, out_help="output folder (must be new or empty)")
    aud.set_defaults(func=cmd_audit)


def _add_info_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    info = command("info", "describe a model: architecture, classes and their names, input size, normalisation, the "
                           "recipe 'auto' picks, and the unlearning history of a model this library wrote")
    info.add_argument("target", metavar="MODEL_OR_CHECKPOINT",
                      help="a zoo name with a registered checkpoint, a checkpoint file, a forget output folder, or "
                           "a model in timm's format (local-dir:PATH, hf-hub:NAME, or the folder's path)")
    info.add_argument("--model", default=None, help="architecture of a checkpoint file that does not record it")
    info.add_argument("--trust-checkpoint", action="store_true", help="open pickled checkpoints that safe loading "
                                                                      "refuses")
    info.add_argument("--json", action="store_true", help="print it as JSON")
    info.set_defaults(func=cmd_info)


def _add_bench_command(command: Callable[..., argparse.ArgumentParser]) -> None:
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


def _add_generator_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    gen = command("generator", "amortised anti-memory generators: fit once per model, reuse per request")
    gen_sub = gen.add_subparsers(dest="generator_command", required=True, metavar="COMMAND")
    fit = gen_sub.add_parser("fit", help="fit a class-conditional generator for every class of a model",
                             description="fit a class-conditional generator for every class of a model",
                             formatter_class=_HelpFormatter)
    _model_options(fit, model_required=True)
    fit.add_argument("--recipe", default="auto", help="recipe whose generator section is used")
    fit.add_argument("--set", action="append", metavar="KEY=VALUE", help="recipe override, e.g. generator.lr=0.02")
    fit.add_argument("--steps", type=int, default=None, help="fitting steps; default: recipe steps x classes / 2")
    _output_options(fit, out_help="output folder; default: generators/<model-id>", out_required=False)
    fit.set_defaults(func=cmd_generator_fit)


def _add_table_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    table = command("table", "one table (means per method) over bench result files of one suite")
    table.add_argument("results", nargs="+", help="results.json files written by bench")
    table.add_argument("--full", action="store_true", help="also the per-request rows")
    table.set_defaults(func=cmd_table)


def _add_recipes_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    recipes = command("recipes", "list the recipes and the architectures they match, or show one in full")
    recipes.add_argument("--show", metavar="NAME", help="print every setting of recipe NAME (or a YAML path) as "
                                                        "YAML, with the defaults of every method's section")
    recipes.set_defaults(func=cmd_recipes)


def _add_train_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    train = command("train", "train a checkpoint (the digits demo CNN, a timm family at 32x32 on CIFAR-10, a CIFAR-100 "
                             "original); "
                             "cached by content hash")
    train.add_argument("--model", default="digits_cnn",
                       help="a model with training settings here (an unknown name lists them)")
    train.add_argument("--data", default="digits",
                       help="'digits', or a CIFAR-10 or CIFAR-100 folder (cifar10_*.npz, cifar100_*.npz)")
    train.add_argument("--epochs", type=float, default=None, help="override the model's training epochs")
    train.add_argument("--state-dir", default=None,
                       help="where the state of every finished epoch is kept (default: the cache folder); an "
                            "interrupted training run again with the same arguments continues from its last epoch")
    train.add_argument("--without", type=int, nargs="+", metavar="CLASS", default=None,
                       help="train the retrain reference instead: the same settings on the training set without "
                            "these classes (its card records the cache key the audit and bench match it by)")
    train.add_argument("--device", default="cpu",
                       help="where to train: cpu (default; bit-reproducible), cuda, cuda:N or auto")
    train.add_argument("--record-updates", action="store_true",
                       help="also write the training log amnesiac unlearning reads (every step's update and its "
                            "batch's classes) beside the checkpoint as NAME.updates/; the weights are the same")
    _output_options(train, out_help="also copy the checkpoint (and its .json card) here", out_required=False)
    train.set_defaults(func=cmd_train)


def _add_fetch_data_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    fetch = command("fetch-data", "build the benchmark data folder the CIFAR-10 tests and benchmarks read "
                                  "(downloads CIFAR-10 through torchvision and the public checkpoints; needs the "
                                  "network)")
    fetch.add_argument("--out", required=True, help="folder to write (e.g. ../shared/data beside the repository)")
    fetch.add_argument("--download-root", default=None,
                       help="where torchvision keeps the CIFAR-10 archive; default: the cache folder")
    fetch.set_defaults(func=cmd_fetch_data)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zeroshot-unlearn", formatter_class=_HelpFormatter,
        description="Make a trained image classifier forget whole classes without the forget data.",
        epilog="`zeroshot-unlearn COMMAND --help` describes each command. Exit codes: 0 done, 2 bad input "
               "(nothing was written), 1 the run failed (also: the classes were not forgotten), 3 forget --no-strict "
               "wrote a model that was not forgotten.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, formatter_class=_HelpFormatter, **kwargs)

    for add in (_add_demo_command, _add_forget_command, _add_audit_command, _add_info_command, _add_bench_command,
                _add_generator_command, _add_table_command, _add_recipes_command, _add_train_command,
                _add_fetch_data_command):
        add(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(message)s")
    joined = False
    try:
        if args.command == "forget":  # started by torchrun: join its process group (data-parallel run)
            from .runtime import init_from_environment

            joined = init_from_environment(args.device)
        return args.func(args)
    except (DivergenceError, ForgettingFailedError) as err:  # the run failed; the input was fine
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 1
    except UnlearnError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; outputs are written atomically, nothing half-written was left", file=sys.stderr)
        return 1
    except Exception as err:  # a runtime failure: one line unless --debug
        if args.debug:
            raise
        print(f"error: {type(err).__name__}: {err} (run with --debug for the traceback)", file=sys.stderr)
        return 1
    finally:
        if joined:
            import torch.distributed

            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
