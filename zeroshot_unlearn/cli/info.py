"""``zeroshot-unlearn info``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable


def cmd_info(args) -> int:
    import json

    from ..plan import forgotten_classes
    from ..spec import model_architecture
    from ..data.names import display_names_of, label_names_of
    from ..recipes import resolve_recipe_name
    from ..surgery import model_num_classes
    from ..zoo import load_model
    from ..zoo.loading import forget_of
    from ..zoo.timm_format import is_timm_source

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
            "recipe": resolve_recipe_name(architecture, tuple(cfg.get("input_size") or ())),
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
        print(f"  {entry.get('time', '?')}  forgot {entry.get('requested')} (all forgotten: {forget_of(entry)}) "
              f"with {entry.get('method')}, recipe {entry.get('recipe')}, seed {entry.get('seed')}, "
              f"{entry.get('retained_images')} retained images, {entry.get('forget_images_used')} forget images, "
              f"self-check {verdict}")
    return 0


def add_command(command: Callable[..., argparse.ArgumentParser]) -> None:
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
