"""``zeroshot-unlearn recipes``."""

from __future__ import annotations

import argparse
from typing import Callable


def cmd_recipes(args) -> int:
    from ..recipes import list_recipes, load_recipe

    if args.show:
        import yaml

        from ..settings import SECTIONS

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


def add_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    recipes = command("recipes", "list the recipes and the architectures they match, or show one in full")
    recipes.add_argument("--show", metavar="NAME", help="print every setting of recipe NAME (or a YAML path) as "
                                                        "YAML, with the defaults of every method's section")
    recipes.set_defaults(func=cmd_recipes)
