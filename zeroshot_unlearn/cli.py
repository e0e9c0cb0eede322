"""Command line: ``zeroshot-unlearn {demo,forget,audit,bench,generator,recipes,train}``.

Exit codes: 0 success, 2 usage or validation error, 1 runtime failure. Errors print as one
line; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from .errors import DivergenceError, UnlearnError


def _budget(text: str) -> int | float:
    """``2500`` -> 2500 images; ``0.05`` -> 5% of the training split."""
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        raise UnlearnError(f"--retain-budget must be a count (2500) or a fraction (0.05), got {text!r}") from None


def _overrides(pairs: list[str] | None) -> dict:
    from .recipes import parse_override

    return dict(parse_override(p) for p in pairs or [])


def cmd_demo(args) -> int:
    from .api import forget_classes
    from .zoo.trained import DIGITS_TRAIN
    from .data import load_data, retained_subset
    from .metrics import forget_retain_accuracy, masked_accuracy, per_class_accuracy
    from .train import retrain_reference
    from .zoo import load_model

    start = time.perf_counter()
    forget = sorted(args.classes)
    model = load_model("digits_cnn", pretrained=True)
    data = load_data("digits", model)
    retain = retained_subset(data.train, forget, args.retain_budget, seed=args.seed)
    print(f"digits demo: forgetting classes {forget} from the shipped digits_cnn with {len(retain)} retained images "
          "and 0 forget images")
    reference, retrain_s = retrain_reference("digits_cnn", data.train, forget, DIGITS_TRAIN, seed=args.seed,
                                             progress=not args.quiet)
    t0 = time.perf_counter()
    result = forget_classes(model, forget, retain=retain, seed=args.seed, progress=not args.quiet)
    forget_s = time.perf_counter() - t0
    rows = {name: per_class_accuracy(m, data.test, 10)
            for name, m in (("original", model), ("unlearned", result.model), ("retrain", reference))}
    print(f"\n{'class':>5} | {'original':>8} | {'unlearned':>9} | {'retrain':>7}")
    for c in range(10):
        mark = "  <- forgotten" if c in forget else ""
        print(f"{c:>5} | {rows['original'][c]:8.2f} | {rows['unlearned'][c]:9.2f} | {rows['retrain'][c]:7.2f}{mark}")
    summary = {name: forget_retain_accuracy(m, data.test, forget)
               for name, m in (("original", model), ("unlearned", result.model), ("retrain", reference))}
    print(f"\n{'model':>9} | {'Df':>6} | {'Dr':>6}")
    for name, (df, dr) in summary.items():
        print(f"{name:>9} | {df:6.2f} | {dr:6.2f}")
    print(f"Dr ceiling (original, forget logits masked): {masked_accuracy(model, data.test, forget):.2f}")
    retrain_note = f"{retrain_s:.1f}s" if retrain_s else "cached"
    print(f"\ntime: forgetting {forget_s:.1f}s ({', '.join(f'{k} {v:.1f}s' for k, v in result.timings.items())}); "
          f"retrain reference {retrain_note}; total {time.perf_counter() - start:.1f}s")
    return 0


def cmd_forget(args) -> int:
    from .api import forget_classes, forgotten_classes
    from .data import load_data, retained_subset
    from .io import atomic_dir, check_output_folder, write_json
    from .metrics import forget_retain_accuracy, masked_accuracy
    from .runtime import current_world

    out = Path(args.out)
    check_output_folder(out, overwrite=args.overwrite)  # fail before any work; the write checks again
    rank, world_size = current_world()
    say = print if rank == 0 else (lambda *a, **k: None)
    model = _load_trained(args)
    data = load_data(args.retain_data, model)
    budget = _budget(args.retain_budget)
    # Classes the model forgot in earlier requests stay out of the retained data too.
    retain = retained_subset(data.train, sorted(set(args.classes) | set(forgotten_classes(model))), budget,
                             seed=args.seed)
    start = time.perf_counter()
    result = forget_classes(model, args.classes, retain=retain, recipe=args.recipe, method=args.method,
                            overrides=_overrides(args.set), seed=args.seed, progress=not args.quiet,
                            device=args.device, generator=args.generator)
    seconds = time.perf_counter() - start
    row = {"method": result.method, "classes": result.classes, "time_s": round(seconds, 2),
           "world_size": world_size, "device": result.history[-1]["device"],
           "gradient_sync": result.history[-1]["gradient_sync"],
           "retained_images": result.retained_images, "forget_images_used": result.forget_images_used,
           "timings": {k: round(v, 2) for k, v in result.timings.items()}}
    evaluation = data.test if data.test is not None else None
    if evaluation is not None:
        df, dr = forget_retain_accuracy(result.model, evaluation, result.classes)
        df0, dr0 = forget_retain_accuracy(model, evaluation, result.classes)
        row.update(df=round(df, 2), dr=round(dr, 2), df_original=round(df0, 2), dr_original=round(dr0, 2),
                   dr_original_masked=round(masked_accuracy(model, evaluation, result.classes), 2), dr_retrain=None)
        say(f"Df {df:.2f} (original {df0:.2f}), Dr {dr:.2f} (original {dr0:.2f}) on the test split")
    if args.audit and evaluation is not None and rank == 0:
        report = _run_audit(model, result.model, result.classes, data, retain, source=args.retain_data,
                            reference_path=args.reference, seed=args.seed, quiet=args.quiet,
                            generator=result.generator, recipe=result.recipe)
        _print_audit(report)
        from .bench import AUDIT_COLUMNS

        for key in AUDIT_COLUMNS:
            row[key] = report.metrics["unlearned"].get(key)
    # Everything is computed before anything is written: the folder appears complete or not at all.
    # Under torchrun every rank holds the same result and rank 0 alone writes it.
    if rank == 0:
        with atomic_dir(out, overwrite=args.overwrite) as folder:
            result.write_into(folder)
            if args.audit and evaluation is not None:
                report.save(folder / "audit")
            write_json(folder / "metrics.json", {"suite": str(args.retain_data), "rows": [row]})
    if world_size > 1:
        import torch.distributed

        torch.distributed.barrier()
    say(f"wrote {out}/model.safetensors, recipe.yaml, metrics.json in {seconds:.1f}s"
        + (f" ({world_size} processes)" if world_size > 1 else ""))
    return 0


def _run_audit(original, unlearned, classes, data, retain, *, source, reference_path, seed, quiet, generator=None,
               recipe=None):
    from .audit import audit
    from .zoo.trained import DIGITS_TRAIN
    from .train import retrain_reference
    from .zoo import load_model

    if data.test is None:
        raise UnlearnError("the audit needs a test split in the data (a *test*.npz or DIR/test)")
    reference = None
    if reference_path:
        reference = load_model(original.pretrained_cfg["architecture"], reference_path)
    elif str(source) == "digits":
        reference, _ = retrain_reference("digits_cnn", data.train, classes, DIGITS_TRAIN, progress=not quiet)
    return audit(original, unlearned, forget=classes, train=data.train, test=data.test, retain=retain,
                 reference=reference, generator=generator, recipe=recipe, seed=seed, progress=not quiet)


def _print_audit(report) -> None:
    from .audit.report import ROWS

    names = [n for n in ("original", "unlearned", "retrain") if n in report.metrics]
    print(f"{'metric':<42}" + "".join(f"{n:>11}" for n in names))
    for key, label, _unit in ROWS:
        values = [report.metrics[n].get(key) for n in names]
        print(f"{label:<42}" + "".join(f"{'–':>11}" if v is None else f"{v:>11.3f}" if isinstance(v, float)
                                       else f"{v:>11}" for v in values))


def cmd_audit(args) -> int:
    from .data import load_data, retained_subset
    from .io import check_output_folder
    from .zoo import load_model

    out = Path(args.out)
    check_output_folder(out, overwrite=args.overwrite)  # fail before any work; the write checks again
    unlearned = load_model(args.model, args.unlearned)
    original = load_model(unlearned.pretrained_cfg["architecture"], args.original,
                          trust_checkpoint=args.trust_checkpoint)
    data = load_data(args.data, original)
    classes = sorted(args.classes)
    budget = _budget(args.retain_budget)
    retain = retained_subset(data.train, classes, budget, seed=args.seed)
    report = _run_audit(original, unlearned, classes, data, retain, source=args.data, reference_path=args.reference,
                        seed=args.seed, quiet=args.quiet)
    report.save(out, overwrite=args.overwrite)
    _print_audit(report)
    print(f"wrote {out}/report.json and {out}/report.html ({report.meta['seconds']}s)")
    return 0


def cmd_bench(args) -> int:
    from .bench import parse_requests, run_bench, save_results
    from .zoo import load_model

    references = {}
    for spec in args.reference or []:
        classes, _, path = spec.partition(":")
        if not path:
            raise UnlearnError(f"--reference must look like CLASSES:PATH (e.g. 3,7:retrain.th), got {spec!r}")
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
                        audit=args.audit or False, overrides=_overrides(args.set), progress=not args.quiet,
                        checkpoint=args.out, resume=args.resume, generator=args.generator)
    save_results(results, args.out, args.markdown)
    from .bench import markdown_table

    print(markdown_table(results))
    return 0


def _load_trained(args):
    """The model of ``--model``/``--checkpoint``; a model with no checkpoint and no registered one is refused."""
    from .zoo import load_model
    from .zoo.registry import model_entry

    if args.checkpoint is None:
        entry = model_entry(args.model)
        if entry is None or entry.default_checkpoint is None:
            raise UnlearnError(f"--checkpoint is required: {args.model!r} has no registered trained checkpoint, and "
                               "forgetting classes needs a trained model")
    return load_model(args.model, args.checkpoint, pretrained=args.checkpoint is None,
                      trust_checkpoint=args.trust_checkpoint)


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

    from .bench import markdown_table, merge_results, summary_table

    merged = merge_results([json.loads(Path(p).read_text()) for p in args.results])
    print(markdown_table(merged) if args.full else summary_table(merged))
    return 0


def cmd_recipes(_args) -> int:
    from .recipes import list_recipes, load_recipe

    recipes = list_recipes()
    width = max(len(", ".join(patterns)) for patterns in recipes.values())
    for name, patterns in recipes.items():
        print(f"{name:<14} matches {', '.join(patterns):<{width}}  {load_recipe(name).description}")
    return 0


def cmd_train(args) -> int:
    import dataclasses
    import shutil

    from .data import load_data
    from .io import atomic_path
    from .train import train_checkpoint
    from .zoo.trained import get_train_spec

    spec = get_train_spec(args.model)
    if (spec.data == "digits") != (args.data == "digits"):
        wanted = "'digits'" if spec.data == "digits" else "a CIFAR-10 folder (cifar10_*.npz) or an ImageFolder tree"
        raise UnlearnError(f"{spec.name} is trained on {spec.data}: pass --data {wanted}")
    if args.epochs is not None:
        spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, epochs=args.epochs))
    if args.out is not None and Path(args.out).exists() and not args.overwrite:
        raise UnlearnError(f"{args.out} exists; pass --overwrite to replace it")
    data = load_data(args.data, spec.build())
    trained = train_checkpoint(spec, data, seed=args.seed, progress=not args.quiet)
    where = trained.path
    if args.out is not None:
        for source, target in ((trained.path, Path(args.out)),
                               (trained.path.with_suffix(".json"), Path(args.out).with_suffix(".json"))):
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
        where = Path(args.out)
    card = trained.card
    print(f"{spec.name}: test accuracy {card['test_accuracy']}% ({card['train_images']} training images, "
          f"{card['train']['epochs']} epochs, trained in {card['train_seconds']}s); checkpoint {where}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zeroshot-unlearn", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="forget digits 3 and 7 from the shipped demo model (about a minute)")
    demo.add_argument("--classes", type=int, nargs="+", default=[3, 7])
    demo.add_argument("--retain-budget", type=int, default=400)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(func=cmd_demo)

    forget = sub.add_parser("forget", help="forget classes from a model and write the result")
    forget.add_argument("--model", required=True, help="zoo or timm model name")
    forget.add_argument("--checkpoint", help="checkpoint file (.th/.pth/.safetensors); default: the model's registered "
                        "checkpoint (digits_cnn: the shipped demo)")
    forget.add_argument("--classes", type=int, nargs="+", required=True)
    forget.add_argument("--retain-data", required=True, help="'digits', a folder of *train*/*test*.npz, or an ImageFolder")
    forget.add_argument("--retain-budget", default="2500", help="retained images (count, or a fraction like 0.05)")
    forget.add_argument("--recipe", default="auto")
    forget.add_argument("--method", default=None)
    forget.add_argument("--set", action="append", metavar="KEY=VALUE", help="recipe override, e.g. impair.lr=0.02")
    forget.add_argument("--seed", type=int, default=0)
    forget.add_argument("--out", required=True)
    forget.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --out")
    forget.add_argument("--trust-checkpoint", action="store_true", help="allow pickles that weights_only refuses")
    forget.add_argument("--audit", action="store_true", help="run the audit right after and write OUT/audit/")
    forget.add_argument("--reference", help="retrain reference checkpoint for the audit (digits: computed)")
    forget.add_argument("--generator", help="a fitted amortised generator folder (generators/<model-id>/) to reuse")
    forget.add_argument("--device", default="auto", help="'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'")
    forget.add_argument("--quiet", action="store_true")
    forget.set_defaults(func=cmd_forget)

    aud = sub.add_parser("audit", help="measure forgetting: MIA, probe, rebound, relearn; report.json + report.html")
    aud.add_argument("--model", default=None, help="architecture (default: read from the unlearned file)")
    aud.add_argument("--original", required=True, help="original checkpoint")
    aud.add_argument("--unlearned", required=True, help="unlearned model.safetensors")
    aud.add_argument("--classes", type=int, nargs="+", required=True)
    aud.add_argument("--data", required=True, help="'digits', a folder of *train*/*test*.npz, or an ImageFolder")
    aud.add_argument("--retain-budget", default="2500")
    aud.add_argument("--reference", help="retrain reference checkpoint (digits: computed and cached)")
    aud.add_argument("--seed", type=int, default=0)
    aud.add_argument("--out", required=True)
    aud.add_argument("--overwrite", action="store_true")
    aud.add_argument("--trust-checkpoint", action="store_true")
    aud.add_argument("--quiet", action="store_true")
    aud.set_defaults(func=cmd_audit)

    bench = sub.add_parser("bench", help="run the protocol requests of a suite and write results.json + a table")
    bench.add_argument("--suite", required=True,
                       help="digits, cifar10-resnet20/32/44 (public checkpoints in --data-dir), or cifar10-NAME for "
                            "a timm family this project trains (NAME from `zeroshot-unlearn train`; trained once "
                            "and cached)")
    bench.add_argument("--data-dir", default=None)
    bench.add_argument("--requests", default="protocol", help="'protocol' or '3,7;0;1,9'")
    bench.add_argument("--retain-budget", default=None)
    bench.add_argument("--methods", nargs="+", default=["anti_memory"],
                       help="method names (space or comma separated), or 'all' for every registered method")
    bench.add_argument("--reference", action="append", metavar="CLASSES:PATH",
                       help="retrain reference for a request, e.g. 3,7:path/resnet20-retrain-without-3-7.th")
    bench.add_argument("--reference-model", default="cifar10_resnet20")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--out", default="results.json")
    bench.add_argument("--markdown", default=None, help="markdown table path (default: OUT with .md)")
    bench.add_argument("--audit", nargs="?", const="full", choices=["full", "light"], default=None,
                       help="add the audit columns: 'full' (default: MIA, probe-Df, rebound, relearn, AIN) or "
                            "'light' (MIA and rebound only, for sweeps over every request)")
    bench.add_argument("--resume", action="store_true",
                       help="keep the requests already in --out (written after each request) if its settings match")
    bench.add_argument("--set", action="append", metavar="KEY=VALUE", help="recipe override for every method")
    bench.add_argument("--generator", default=None,
                       help="a fitted generator folder (generator fit) for the methods that use one: the amortised "
                            "setting, with the recipe's amortised schedule")
    bench.add_argument("--quiet", action="store_true")
    bench.set_defaults(func=cmd_bench)

    gen = sub.add_parser("generator", help="amortised anti-memory generators: fit once per model, reuse per request")
    gen_sub = gen.add_subparsers(dest="generator_command", required=True)
    fit = gen_sub.add_parser("fit", help="fit a class-conditional generator for every class of a model")
    fit.add_argument("--model", required=True, help="zoo or timm model name")
    fit.add_argument("--checkpoint", help="checkpoint file (default: the model's registered checkpoint)")
    fit.add_argument("--recipe", default="auto", help="recipe whose generator section is used")
    fit.add_argument("--set", action="append", metavar="KEY=VALUE", help="recipe override, e.g. generator.lr=0.02")
    fit.add_argument("--steps", type=int, default=None, help="fitting steps (default: recipe steps x classes / 2)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--out", default=None, help="folder (default: generators/<model-id>)")
    fit.add_argument("--overwrite", action="store_true")
    fit.add_argument("--trust-checkpoint", action="store_true")
    fit.add_argument("--quiet", action="store_true")
    fit.set_defaults(func=cmd_generator_fit)

    table = sub.add_parser("table", help="one table (means per method) over bench result files of one suite")
    table.add_argument("results", nargs="+", help="results.json files written by bench")
    table.add_argument("--full", action="store_true", help="also the per-request rows")
    table.set_defaults(func=cmd_table)

    recipes = sub.add_parser("recipes", help="list the recipes and the architectures they match")
    recipes.set_defaults(func=cmd_recipes)

    train = sub.add_parser("train", help="train a checkpoint (digits demo CNN or a timm family at 32x32 on CIFAR-10); "
                                         "cached by content hash")
    train.add_argument("--model", default="digits_cnn", help="a model with training settings here (an unknown name lists them)")
    train.add_argument("--data", default="digits", help="'digits', or a CIFAR-10 folder (cifar10_*.npz)")
    train.add_argument("--epochs", type=float, default=None, help="override the model's training epochs")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default=None, help="also copy the checkpoint (and its .json card) here")
    train.add_argument("--overwrite", action="store_true")
    train.add_argument("--quiet", action="store_true")
    train.set_defaults(func=cmd_train)
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
    except DivergenceError as err:
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
