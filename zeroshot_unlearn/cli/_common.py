"""What the commands share: the help formatter, the parsing of common arguments, loading a trained model."""

from __future__ import annotations

import argparse

from ..errors import InvalidRequestError

EXIT_NOT_FORGOTTEN = 3
"""``forget --no-strict`` wrote the model, but its checks say the classes were not forgotten."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's layout and appends each option's default where it has a meaningful one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("%(default)" in text or not action.option_strings or action.default in (None, False)
                or action.default is argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


def parse_budget(text: str) -> int | float:
    """``2500`` -> 2500 images; ``0.05`` -> 5% of the training split; anything else is refused here."""
    try:
        value: int | float = float(text) if "." in text else int(text)
    except ValueError:
        raise InvalidRequestError(f"--retain-budget must be a count (2500) or a fraction (0.05), got {text!r}") from None
    if value <= 0 or (isinstance(value, float) and value > 1):
        raise InvalidRequestError(f"--retain-budget must be a positive count (2500) or a fraction in (0, 1] (0.05), "
                                  f"got {text!r}")
    return value


def parse_classes(values: list[str]) -> list[int | str]:
    """``--classes 3 7`` or ``--classes cat horse``: numbers become ids, the rest stay names for the model."""
    return [int(v) if v.lstrip("-").isdigit() else v for v in values]


def parse_overrides(pairs: list[str] | None) -> dict:
    from ..recipes import parse_override

    return dict(parse_override(p) for p in pairs or [])


def with_class_names(model, class_names_file: str | None):
    """The model with ``--class-names`` as its label names (they travel into the files it is saved to)."""
    if class_names_file is None:
        return model
    from ..data import read_class_names
    from ..surgery import model_num_classes

    names = read_class_names(class_names_file)
    if len(names) != model_num_classes(model) or len(set(names)) != len(names):
        raise InvalidRequestError(f"{class_names_file} holds {len(names)} names ({len(set(names))} distinct); the "
                                  f"model has {model_num_classes(model)} classes: give one distinct name per class")
    model.pretrained_cfg["label_names"] = names
    return model


def load_trained(args):
    """The model of ``--model``/``--checkpoint``; a model with no checkpoint and no registered one is refused."""
    from ..zoo import load_model
    from ..zoo.registry import pretrained_entry
    from ..zoo.timm_format import is_timm_source

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


def model_options(command: argparse.ArgumentParser, *, model_required: bool) -> None:
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


def output_options(command: argparse.ArgumentParser, *, out_help: str, out_required: bool = True,
                    seed_help: str = "random seed (same seed, same result on CPU)") -> None:
    """--seed, --out, --overwrite and --quiet, which every command that writes something takes."""
    command.add_argument("--seed", type=int, default=0, help=seed_help)
    command.add_argument("--out", required=out_required, default=None, help=out_help)
    command.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty (or over an "
                                                                  "existing) --out")
    command.add_argument("--quiet", action="store_true", help="no progress bars")
