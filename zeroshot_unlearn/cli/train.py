"""``zeroshot-unlearn train``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from ..errors import DataError, InvalidRequestError, OutputError
from ._common import output_options


def cmd_train(args) -> int:
    import dataclasses
    import shutil

    from ..data import load_data
    from ..harness.specs import get_train_spec
    from ..harness.training import retrain_checkpoint, train_checkpoint
    from ..io import atomic_path
    from ..runtime import resolve_device

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
            from ..io import atomic_dir
            from ..training_log import log_folder

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


def add_command(command: Callable[..., argparse.ArgumentParser]) -> None:
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
    output_options(train, out_help="also copy the checkpoint (and its .json card) here", out_required=False)
    train.set_defaults(func=cmd_train)
