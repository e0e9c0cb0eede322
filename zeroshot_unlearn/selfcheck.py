"""The run checks its own forgetting before it returns, without any forget-class image.

A run that did not forget must never look like success. The check asks the new model itself:

1. **Before the run** the original is inverted into class impressions of each forget class
   (:func:`~zeroshot_unlearn.inversion.invert_classes`: pixels optimised until the model calls them
   that class, under shifts and a smoothness and BatchNorm-statistics prior; nothing of the
   anti-memory generator). If the original does not call most of its own impressions a forget class,
   it cannot be inverted and the check could say nothing: under ``strict`` the request is refused
   before any work (a model that cannot recognise its own classes is no model to forget from).
2. **After the run** the figure (``self_check.figure``):

   - ``impressions`` (the default): the share of the original's confident impressions the new model
     still calls a forget class. Cheap and rarely wrong on a run that forgot, but it misses partial
     forgetting: methods remove such super-stimuli before they remove the class.
   - ``inversion``: the *new* model is inverted the same way, towards the forget classes; the figure
     is the share of those inversions it calls a forget class (or the impressions' share, if higher).
     A model that still holds a class lets the search find inputs it calls that class. It catches
     partial forgetting the default misses, and costs a second inversion, but it also fails runs that
     did forget (a model that can still be driven to a forget class on synthetic inputs): measured
     in ``benchmarks/selfcheck/``, which is why it is not the default.
3. With an evaluation split (``eval_data``, the CLI's test split) the test-split Df must also stay
   under ``max_test_df``.

How the figure tracks the real test Df, over many methods, requests and part-way runs, is measured
in ``benchmarks/selfcheck/`` (``research/selfcheck_study.py``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import torch
import torch.nn as nn

from .sections import SelfCheckConfig

MEANING = ("figure: % of the original's confident class impressions of the forget classes (self_check.figure "
           "'impressions') or of the new model's own inversions towards them, if higher ('inversion'), that the new "
           "model calls a forget class; original_figure: % of its own impressions the original calls one. "
           "test_df: accuracy on the forget classes of the evaluation split (eval_data)")


@dataclass(frozen=True)
class CheckBaseline:
    """What the check measures on the original before the run."""

    impressions: torch.Tensor
    """The original's impressions that it assigns to their forget class with ``min_confidence``."""
    original_figure: float
    """% of the original's impressions that it calls their forget class with ``min_confidence``."""
    per_class: int
    seconds: float

    @property
    def conclusive(self) -> bool:
        return not math.isnan(self.original_figure)


@dataclass(frozen=True)
class SelfCheck:
    """What the check measured; rates and Df in percent. ``passed`` None: inconclusive."""

    figure: float
    """The figure compared with ``max_figure``: ``impression_rate``, or with ``figure: inversion`` the
    higher of ``inversion_rate`` and ``impression_rate``."""
    original_figure: float
    """The same inversion on the original: what a model that knows the classes scores."""
    max_figure: float
    inversion_rate: float
    """% of the new model's inversions towards the forget classes that it calls a forget class (NaN unless
    ``figure: inversion``)."""
    impression_rate: float
    """% of the original's confident impressions the new model calls a forget class."""
    impressions: int
    test_df: float | None
    """Df on the evaluation split (``eval_data``), None without one."""
    max_test_df: float
    test_images: int
    """Forget-class images of the evaluation split the test Df was measured on (0 without one)."""
    passed: bool | None
    cause: str
    """Why the check passed, failed or was inconclusive, in words."""
    seconds: float
    meaning: str = MEANING

    @property
    def figure_passed(self) -> bool | None:
        """The verdict of the figure alone (the data-free part of the check)."""
        return None if math.isnan(self.figure) else self.figure <= self.max_figure

    @property
    def agrees_with_test_df(self) -> bool | None:
        """Whether the figure alone gives the verdict the evaluation split's Df gives (None without one)."""
        return figure_agrees(self.figure_passed, self.test_df, self.max_test_df)

    def as_dict(self) -> dict[str, Any]:
        out = {k: (None if isinstance(v, float) and math.isnan(v) else round(v, 3) if isinstance(v, float) else v)
               for k, v in asdict(self).items()}
        out["figure_passed"] = self.figure_passed
        out["agrees_with_test_df"] = self.agrees_with_test_df
        return out

    def describe(self) -> str:
        return self.cause


def figure_agrees(figure_passed: bool | None, test_df: float | None, max_test_df: float) -> bool | None:
    """Whether the data-free figure's verdict is the one a measured Df gives (None when either is missing)."""
    if test_df is None or figure_passed is None:
        return None
    return figure_passed == (test_df <= max_test_df)


def _normalised(pixels: torch.Tensor, mean, std) -> torch.Tensor:
    return (pixels - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)


def _per_class(cfg: SelfCheckConfig, classes: int) -> int:
    """Impressions per class: the recipe's count, fewer for a request of many classes (the check's cost
    grows with the images, and ``max_impressions`` bounds them), never under 2 where ``max_impressions``
    allows 2 per class, else 1 (at 224 px a 10-class request's 20 impressions cost half the call)."""
    fits = cfg.max_impressions // max(1, classes)
    return max(2 if fits >= 2 else 1, min(cfg.impressions_per_class, fits))


def _called_forget(model: nn.Module, x: torch.Tensor, forget: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.isin(model(x).argmax(1), forget)


def _invert(model: nn.Module, forget: Sequence[int], cfg: SelfCheckConfig, per_class: int, input_size, mean, std,
            seed: int) -> torch.Tensor:
    from .inversion import invert_classes

    device = next(model.parameters()).device
    pixels = invert_classes(model, list(forget), input_size, mean, std, per_class=per_class, steps=cfg.steps,
                            lr=cfg.lr, bn_weight=cfg.bn_prior_weight, resolution=cfg.resolution, seed=seed,
                            patience=cfg.patience, stop_confidence=cfg.min_confidence)
    return _normalised(pixels, mean, std).to(device)


def _rate(flags: torch.Tensor) -> float:
    return float(flags.float().mean() * 100) if len(flags) else math.nan


def check_baseline(original: nn.Module, forget: Sequence[int], cfg: SelfCheckConfig, input_size, mean, std, *,
                   seed: int, known: Sequence[int] | None = None) -> CheckBaseline:
    """Invert the original (eval mode, unchanged) into impressions of ``forget``; NaN ``original_figure``
    when it recognises fewer than ``min_original_figure`` % of them (it cannot be inverted).

    ``known``: the forget classes the original still knows (not those an earlier request removed,
    whose impressions it rightly does not recognise); recognition is measured on those."""
    start = time.perf_counter()
    per_class = _per_class(cfg, len(forget))
    x = _invert(original, forget, cfg, per_class, input_size, mean, std, seed)
    labels = torch.tensor([c for c in forget for _ in range(per_class)], device=x.device)
    with torch.no_grad():
        probs = original(x).softmax(1)
    forget_t = torch.as_tensor(list(forget), device=x.device)
    confident = probs.gather(1, labels[:, None]).squeeze(1) >= cfg.min_confidence
    # Recognising an impression means calling it its class with the confidence the figure asks for.
    of_known = torch.isin(labels, torch.as_tensor(list(forget if known is None else known), device=x.device))
    figure = _rate((confident & torch.isin(probs.argmax(1), forget_t))[of_known])
    if figure < cfg.min_original_figure:
        figure = math.nan
    return CheckBaseline(x[confident], figure, per_class, time.perf_counter() - start)


def uncheckable_message(baseline: CheckBaseline, cfg: SelfCheckConfig, weights: str | None) -> str:
    return (f"the self-check cannot run: the original model calls fewer than {cfg.min_original_figure:g}% of its own "
            f"class impressions of the forget classes a forget class ({cfg.steps} inversion steps), so it does not "
            "recognise its own classes"
            + (f" (its weights: {weights})" if weights else "")
            + ". A model that cannot recognise its classes is no model to forget from: load trained weights "
              "(load_model(name, pretrained=True) or a checkpoint), or raise self_check.steps")


def check_forgetting(baseline: CheckBaseline, unlearned: nn.Module, forget: Sequence[int], cfg: SelfCheckConfig,
                     input_size, mean, std, *, seed: int, eval_data=None) -> SelfCheck:
    """Run the check on ``unlearned`` (eval mode for the check; its modes are restored, it is not modified).

    ``eval_data``: an evaluation split (an :class:`~zeroshot_unlearn.data.ImageTensorDataset` holding
    forget-class images) whose Df must also stay at most ``cfg.max_test_df``.
    """
    from .evaluation import forget_retain_accuracy

    start = time.perf_counter()
    modes = [m.training for m in unlearned.modules()]
    unlearned.eval()
    forget_t = torch.as_tensor(list(forget), device=next(unlearned.parameters()).device)
    try:
        impression_rate = _rate(_called_forget(unlearned, baseline.impressions, forget_t)) \
            if baseline.conclusive else math.nan
        inversion_rate = math.nan
        if baseline.conclusive and cfg.figure == "inversion":
            x = _invert(unlearned, forget, cfg, baseline.per_class, input_size, mean, std, seed + 1)
            inversion_rate = _rate(_called_forget(unlearned, x, forget_t))
        test_df, test_images = None, 0
        if eval_data is not None:
            test_df = forget_retain_accuracy(unlearned, eval_data, list(forget))[0]
            test_images = int(torch.isin(eval_data.y, forget_t.cpu()).sum())
    finally:
        for module, mode in zip(unlearned.modules(), modes):
            module.training = mode
    if not baseline.conclusive:
        figure = math.nan
    elif cfg.figure == "inversion":
        figure = max(inversion_rate, 0.0 if math.isnan(impression_rate) else impression_rate)
    else:
        figure = impression_rate
    passed, cause = _verdict(figure, baseline, test_df, cfg)
    return SelfCheck(figure, baseline.original_figure, cfg.max_figure, inversion_rate, impression_rate,
                     len(baseline.impressions), test_df, cfg.max_test_df, test_images, passed, cause,
                     baseline.seconds + time.perf_counter() - start)


def _verdict(figure: float, baseline: CheckBaseline, test_df: float | None,
             cfg: SelfCheckConfig) -> tuple[bool | None, str]:
    test_part = "" if test_df is None else f"; Df on the evaluation split {test_df:.2f}% (allowed {cfg.max_test_df:g}%)"
    if test_df is not None and test_df > cfg.max_test_df:
        figure_part = "" if math.isnan(figure) else f" (the data-free figure read {figure:.1f}%)"
        return False, f"Df on the evaluation split is {test_df:.2f}%, above self_check.max_test_df {cfg.max_test_df:g}%" \
            + figure_part
    if math.isnan(figure):
        cause = ("inconclusive: the original model does not recognise its own class impressions of the forget classes "
                 f"(under {cfg.min_original_figure:g}% at {cfg.steps} inversion steps), so the check can say "
                 "nothing; raise self_check.steps") + test_part
        return None, cause
    what = ("of its own inversions towards the forget classes (or of the original's confident impressions)"
            if cfg.figure == "inversion" else f"of the original's {len(baseline.impressions)} confident class "
            "impressions of the forget classes")
    words = (f"the new model still calls {figure:.1f}% {what} a forget class (the original: "
             f"{baseline.original_figure:.1f}% of its own; allowed: {cfg.max_figure:g}%)")
    return figure <= cfg.max_figure, words + test_part


__all__ = ["CheckBaseline", "SelfCheck", "check_baseline", "check_forgetting", "figure_agrees", "MEANING"]
