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
    "relearn_steps": ("relearn steps", None),
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
    digits = 3 if "mia" in key else 0 if key == "relearn_steps" else 2
    name, rule = VERDICT_COLUMNS[key]
    threshold = max_test_df
    judged_with = ("the range of the relearn runs (other images, other batches)" if key == "relearn_steps"
                   else "95% bootstrap intervals")
    out: dict[str, Any] = {"column": key, "value": value, "interval": interval, "original": original[key],
                           "original_interval": own, "threshold": None, "judged_with": judged_with}
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
        elif key == "relearn_steps" and retrain[key] > original[key] and interval[0] > other[1]:
            # More steps than a model that never learnt the classes: at least as forgotten as the reference.
            verdict, words = "forgotten", "harder to relearn than the retrained model"
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


HEAD_INPUT = "head input"


def probe_points(row: Mapping[str, Any]) -> list[tuple[str, float, list[float] | None]]:
    """probe-Df along the backbone: every stage's (``probe_df_stages``), then the head input's (``probe_df``)."""
    points = [(name, stage["value"], stage["interval"]) for name, stage in (row.get("probe_df_stages") or {}).items()]
    if row.get("probe_df") is not None:
        points.append((HEAD_INPUT, row["probe_df"], (row.get("intervals") or {}).get("probe_df")))
    return points


def stage_flag(metrics: Mapping[str, Any], *, model: str = "unlearned", reference: str | None = "retrain"
               ) -> dict[str, Any] | None:
    """Whether ``model`` forgot only at the top: the head input's probe-Df below the original's (intervals apart)
    while an earlier stage still reads like the original's (intervals overlapping) and, where there is a retrain
    reference, unlike the reference's. A projection put just before the head would pass probe-Df there and be
    caught here. None where the stages were not probed."""
    points = {name: (value, interval) for name, value, interval in probe_points(metrics[model])}
    original = {name: (value, interval) for name, value, interval in probe_points(metrics["original"])}
    retrain = metrics.get(reference) if reference else None
    others = {name: (value, interval) for name, value, interval in probe_points(retrain)} if retrain else {}
    if len(points) < 2 or HEAD_INPUT not in points or any(v[1] is None for v in (*points.values(),
                                                                                   *original.values())):
        return None
    top, top_original = points[HEAD_INPUT][1], original[HEAD_INPUT][1]
    forgot_at_top = top[1] < top_original[0]
    lingering = [name for name in points if name != HEAD_INPUT and _overlap(points[name][1], original[name][1])
                 and (name not in others or others[name][1] is None or not _overlap(points[name][1], others[name][1]))]
    flagged = forgot_at_top and bool(lingering)
    if flagged:
        text = (f"FLAG: probe-Df at the head input is below the original's, but stage(s) {', '.join(lingering)} still "
                "read like the original" + (" and unlike the retrained model" if others else
                                            " (no retrain reference: a model that never learnt the classes may read "
                                            "like the original at early stages too)") +
                ": the classes may have been removed only at the top")
    elif forgot_at_top:
        text = "no flag: below the original at the head input, and no earlier stage reads like the original" + (
            " and unlike the retrained model" if others else "")
    else:
        text = "no flag: probe-Df at the head input is not below the original's (nothing forgotten at the top to hide)"
    return {"flagged": flagged, "lingering_stages": lingering, "forgot_at_head_input": forgot_at_top,
            "stages": [name for name in points], "text": text}


__all__ = ["verdicts", "column_verdict", "stage_flag", "probe_points", "VERDICT_COLUMNS", "HEAD_INPUT"]
