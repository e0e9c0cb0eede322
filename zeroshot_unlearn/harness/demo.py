"""``zeroshot-unlearn demo``: the README's first command, on the digits model shipped with the package."""

from __future__ import annotations

import time

from ..api import forget_classes
from ..plan import check_request
from ..data import load_data, retained_subset
from ..evaluation import forget_retain_accuracy, masked_accuracy, per_class_accuracy
from ..zoo import load_model
from .specs import DIGITS_TRAIN
from .training import retrain_reference, retrain_reference_source


def run_demo(classes: list[int], *, retain_budget: int, seed: int = 0, progress: bool = True) -> None:
    """Forget ``classes`` from the shipped digits model with no forget image and print it beside the
    original and a retrain reference (shipped for {3, 7}, trained and cached for other requests)."""
    start = time.perf_counter()
    forget = sorted(classes)
    model = load_model("digits_cnn", pretrained=True)
    check_request(model, forget, seed=seed)
    data = load_data("digits", model)
    retain = retained_subset(data.train, forget, retain_budget, seed=seed)
    print(f"digits demo: forgetting classes {forget} from the shipped digits_cnn with {len(retain)} retained images "
          "and 0 forget images")
    source = retrain_reference_source("digits_cnn", data.train, forget, DIGITS_TRAIN, seed=seed)
    if source is None:
        kept = len(data.train) - len(data.train.of_classes(forget))
        print(f"training the retrain reference first (digits_cnn from scratch without {forget}: {DIGITS_TRAIN.epochs:g} "
              f"epochs on {kept} images, about 10 s on an idle 2-core CPU; cached afterwards). Only {{3, 7}} ships "
              "with the package")
    reference, retrain_s = retrain_reference("digits_cnn", data.train, forget, DIGITS_TRAIN, seed=seed,
                                             progress=progress)
    t0 = time.perf_counter()
    result = forget_classes(model, forget, retain=retain, seed=seed, progress=progress)
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
    retrain_note = {"shipped": f"shipped with the package (its training took {retrain_s:.1f}s)",
                    "cached": f"cached (its training took {retrain_s:.1f}s)",
                    None: f"trained now in {retrain_s:.1f}s"}[source]
    print(f"\ntime: forgetting {forget_s:.1f}s ({', '.join(f'{k} {v:.1f}s' for k, v in result.timings.items())}); "
          f"retrain reference {retrain_note}; total {time.perf_counter() - start:.1f}s")
