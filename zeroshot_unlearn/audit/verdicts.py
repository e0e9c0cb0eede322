"""Where the unlearned model stands between its two references, column by column, with the intervals.

A figure alone does not say whether a model forgot: an MIA AUC of 0.58 is a leak beside a retrained model's
0.49 and nothing beside an original's 0.58 that cannot be told from it. Each verdict here compares the
unlearned model's 95% interval with the original's and, where there is one, the retrain reference's:

- **forgotten**: its interval overlaps the retrain reference's and not the original's;
- **not forgotten**: it overlaps the original's and not the retrain reference's;
- **inconclusive**: anything else, among it an interval that overlaps both references (the column cannot
  tell the references apart on these images); "inconclusive (between)" when it overlaps neither.

Without a retrain reference a column is judged against what a model that never learnt the classes reads,
where that is known: Df and rebound Df at most the self-check's ``max_test_df`` (the whole interval below it
is forgotten, the whole interval above it is not, one that straddles it is inconclusive); an MIA AUC at
chance, 0.5 (an interval reaching 0.5 and clear of the original's is forgotten, one wholly above 0.5 is not,
one reaching 0.5 that also overlaps the original's is inconclusive). probe-Df has no such value (a model
that never learnt a class still probes well above zero): without a reference it gets no verdict.
"""

from __future__ import annotations

from typing import Any, Mapping

from .intervals import with_interval

VERDICT_COLUMNS: dict[str, tuple[str, str | None]] = {
    "df": ("Df", "max_test_df"),
    "mia_forget_auc": ("MIA", "chance"),
    "qmia_auc": ("per-example MIA", "chance"),
    "probe_df": ("probe-Df", None),
    "rebound_df": ("rebound Df", "max_test_df"),
}
"""Column -> (its name in the headline, what it is judged against without a retrain reference)."""

CHANCE = 0.5


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def column_verdict(key: str, unlearned: Mapping[str, Any], original: Mapping[str, Any],
                   retrain: Mapping[str, Any] | None, max_test_df: float | None = None) -> dict[str, Any] | None:
    """The verdict of one column (None when the model has no figure or interval for it, or nothing to judge
    it against)."""
    value, interval = unlearned.get(key), (unlearned.get("intervals") or {}).get(key)
    own = (original.get("intervals") or {}).get(key)
    if value is None or interval is None or own is None:
        return None
    digits = 3 if "mia" in key else 2
    name, rule = VERDICT_COLUMNS[key]
    threshold = max_test_df
    out: dict[str, Any] = {"column": key, "value": value, "interval": interval, "original": original[key],
                           "original_interval": own, "threshold": None, "judged_with": "95% bootstrap intervals"}
    other = (retrain.get("intervals") or {}).get(key) if retrain is not None else None
    if other is not None:
        like_retrain, like_original = _overlap(interval, other), _overlap(interval, own)
        out.update(retrain=retrain[key], retrain_interval=other)
        if like_retrain and not like_original:
            verdict, words = "forgotten", "like the retrained model"
        elif like_original and not like_retrain:
            verdict, words = "not forgotten", "like the original"
        elif like_original and like_retrain:
            verdict, words = "inconclusive", "like both: the references overlap on these images"
        else:
            nearer = "retrained model" if abs(value - retrain[key]) < abs(value - original[key]) else "original"
            verdict, words = "inconclusive (between)", f"between the two, nearer the {nearer}"
        out["headline"] = (f"{name}: {words} ({with_interval(value, interval, digits)} vs "
                           f"{with_interval(retrain[key], other, digits)}; original {with_interval(original[key], own, digits)})")
    elif rule == "max_test_df" and threshold is not None:
        out["threshold"] = threshold
        verdict = ("forgotten" if interval[1] <= threshold else "not forgotten" if interval[0] > threshold
                   else "inconclusive")
        out["headline"] = (f"{name}: {verdict} ({with_interval(value, interval, digits)} against at most {threshold:g}; "
                           f"original {with_interval(original[key], own, digits)}; no retrain reference)")
    elif rule == "chance":
        out["threshold"] = CHANCE
        verdict = ("not forgotten" if interval[0] > CHANCE else "inconclusive" if _overlap(interval, own)
                   else "forgotten")
        words = {"forgotten": "at chance and unlike the original", "not forgotten": "above chance",
                 "inconclusive": "at chance, but so is the original within its interval"}[verdict]
        out["headline"] = (f"{name}: {words} ({with_interval(value, interval, digits)}; chance {CHANCE}; original "
                           f"{with_interval(original[key], own, digits)}; no retrain reference)")
    else:
        return None
    out["verdict"] = verdict
    return out


def verdicts(metrics: Mapping[str, Any], *, model: str = "unlearned", max_test_df: float | None = None,
             reference: str | None = "retrain") -> list[dict]:
    """The verdict of every column for ``model`` (a row of ``audit``'s metrics) against the original and, where
    ``metrics`` has it, the ``reference`` row (None: judged without one)."""
    original = metrics["original"]
    retrain = metrics.get(reference) if reference else None
    out = []
    for key in VERDICT_COLUMNS:
        judged = column_verdict(key, metrics[model], original, retrain, max_test_df)
        if judged is not None:
            out.append(judged)
    return out


__all__ = ["verdicts", "column_verdict", "VERDICT_COLUMNS"]
