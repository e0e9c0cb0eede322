"""``report.json`` + a self-contained ``report.html`` (matplotlib figures inlined as PNG)."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..io import atomic_dir, write_json, write_text
from .verdicts import probe_points

ROWS = [
    ("df", "Df (test, forget classes)", "%"), ("dr", "Dr (test, retained classes)", "%"),
    ("dr_delta_original", "ΔDr vs original", "pt"), ("dr_delta_retrain", "ΔDr vs retrain", "pt"),
    ("dr_delta_ceiling", "ΔDr vs Dr ceiling", "pt"), ("df_train", "Df-train (members)", "%"),
    ("mia_forget_auc", "MIA-forget AUC", ""), ("mia_forget_tpr1", "MIA-forget TPR @ 1% FPR", ""),
    ("qmia_auc", "per-example MIA AUC (quantile regr.)", ""), ("qmia_tpr1", "per-example MIA TPR @ 1% FPR", ""),
    ("qmia_tpr01", "per-example MIA TPR @ 0.1% FPR", ""),
    # the threshold set on the retained classes' non-members for 1% FPR, applied to the forget classes' own
    ("qmia_calibrated_fpr", "per-example MIA FPR at calibrated 1%", ""),
    ("mia_ssd", "MIA-SSD (forget train called member)", "%"), ("probe_df", "probe-Df", "%"),
    ("rebound_df", "rebound Df (1 epoch retained fine-tune)", "%"),
    # the median of the relearn runs; below it their range, not a bootstrap interval
    ("relearn_steps", "relearn steps (median of runs)", ""),
    ("ain", "AIN (relearn vs retrain)", ""),
]


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _grid_figure(grid: torch.Tensor):
    """``grid``: (rows, cols, C, H, W) pixels in [0, 1]; the page's caption is its title."""
    import matplotlib.pyplot as plt

    rows, cols = grid.shape[:2]
    images = grid.flatten(0, 1)
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img in zip(axes.flat, images):
        array = img.permute(1, 2, 0).numpy()
        ax.imshow(array[..., 0] if array.shape[-1] == 1 else array, cmap="gray" if array.shape[-1] == 1 else None,
                  vmin=0, vmax=1)
    return fig


@dataclass
class AuditReport:
    metrics: dict[str, Any]
    per_class: dict[str, list[float]]
    roc: dict[str, tuple[list[float], list[float]]]
    images: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (rows, cols, C, H, W)
    meta: dict[str, Any] = field(default_factory=dict)
    self_check: dict[str, Any] | None = None
    """The run's self-check beside the audit's Df (``audit.self_check_beside_df``); None when left out."""
    per_example: dict[str, dict[str, list[float]] | None] = field(default_factory=dict)
    """Per model: the per-example attack's score of each forget-class member and non-member."""
    verdicts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Per audited model (the unlearned one and the compared ones): each column's verdict and headline
    (``audit.verdicts``)."""
    calibration: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """The references judged as if each were the unlearned model, without a retrain reference: what the
    verdicts read on a model known to have forgotten (retrain) and one known not to have (original)."""

    stage_flags: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per audited model: whether it forgot at the head input while an earlier stage still reads like the
    original (``audit.stage_flag``)."""

    def to_json(self) -> dict[str, Any]:
        return {"meta": self.meta, "metrics": self.metrics, "per_class_accuracy": self.per_class,
                "dr_probe_plane": self.plane(), "self_check": self.self_check, "per_example_mia": self.per_example,
                "verdicts": self.verdicts, "calibration": self.calibration, "probe_stages": self.probe_stages(),
                "stage_flags": self.stage_flags}

    def probe_stages(self) -> dict[str, list[dict[str, Any]]]:
        """Per model: probe-Df at every backbone stage, then at the head input, each with its 95% interval."""
        out = {}
        for name in self.model_names():
            points = probe_points(self.metrics[name])
            if len(points) > 1:
                out[name] = [{"stage": stage, "probe_df": value, "interval": interval}
                             for stage, value, interval in points]
        return out

    def _stage_section(self) -> str:
        stages = self.probe_stages()
        if not stages:
            return ""
        names = list(stages)
        order = [point["stage"] for point in stages[names[0]]]
        head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
        rows = []
        for i, stage in enumerate(order):
            cells = []
            for name in names:
                point = stages[name][i] if i < len(stages[name]) else None
                if point is None:
                    cells.append("<td>–</td>")
                    continue
                low, high = point["interval"] or (None, None)
                interval = "" if low is None else f"<br><small>[{low:.2f}, {high:.2f}]</small>"
                cells.append(f"<td>{point['probe_df']:.2f}{interval}</td>")
            rows.append(f"<tr><th>{html.escape(stage)}</th>{''.join(cells)}</tr>")
        flags = "".join(f"<li><b>{html.escape(name)}</b>: {html.escape(flag['text'])}</li>"
                        for name, flag in self.stage_flags.items())
        return ("<h2>Probes at every stage</h2><p>probe-Df (%) on the pooled output of each backbone stage, then on "
                "the head's input: a class removed only at the top still reads at an earlier stage.</p>"
                f"<table><tr><th>stage</th>{head}</tr>{''.join(rows)}</table><ul>{flags}</ul>")

    def headline(self, model: str = "unlearned") -> list[str]:
        """One line per column: where ``model`` stands between the original and the retrain reference."""
        return [f"{v['headline']}: {v['verdict']}" for v in self.verdicts.get(model, [])]

    def _verdict_section(self) -> str:
        if not self.verdicts:
            return ""
        parts = ["<h2>Verdicts</h2><p>Each column of each audited model against the original and the retrained "
                 "model, judged with the 95% intervals: forgotten where its interval overlaps the retrained "
                 "model's and not the original's; inconclusive where it overlaps both (the column cannot tell the "
                 "references apart here) or neither.</p>"]
        for name, judged in self.verdicts.items():
            items = "".join(f"<li><b>{html.escape(v['verdict'])}</b>: {html.escape(v['headline'])}</li>" for v in judged)
            parts.append(f"<h3>{html.escape(name)}</h3><ul>{items}</ul>")
        if self.calibration:
            rows = "".join(f"<tr><th>{html.escape(name)}</th><td class='text'>"
                           + html.escape("; ".join(f"{v['column']}: {v['verdict']}" for v in judged) or "–")
                           + "</td></tr>" for name, judged in self.calibration.items())
            parts.append("<p>The references judged as if each were the unlearned model, with no retrained model to "
                         "compare with (Df and rebound Df against the self-check's allowance, MIA against chance): "
                         "the retrained model should read forgotten, the original not forgotten.</p>"
                         f"<table>{rows}</table>")
        return "".join(parts)

    def _self_check_section(self) -> str:
        check = self.self_check
        if check is None:
            return ""
        def pct(value):
            return "–" if value is None else f"{value:.2f}%"
        rows = [("where the check comes from", check["source"]),
                ("data-free figure (new model)", f"{pct(check['figure'])} (allowed {check['max_figure']:g}%)"),
                ("the same figure on the original", pct(check["original_figure"])),
                ("Df measured by this audit", f"{pct(check['test_df'])} (allowed {check['max_test_df']:g}%)"),
                ("they agree", {True: "yes", False: "NO", None: "–"}[check["agree"]])]
        cells = "".join(f"<tr><th>{html.escape(k)}</th><td class='text'>{html.escape(str(v))}</td></tr>" for k, v in rows)
        return (f"<h2>Self-check</h2><p>{html.escape(check['summary'])}</p><table>{cells}</table>"
                "<p>The figure is what the run can see without any forget-class image; the Df is measured on real "
                "forget-class test images. A disagreement means the check's verdict is not to be trusted here.</p>")

    def model_names(self) -> list[str]:
        """The measured models in table order: original, unlearned, the compared ones, retrain."""
        own = ("original", "unlearned", "retrain")
        compared = [n for n, row in self.metrics.items() if isinstance(row, dict) and n not in own]
        return [n for n in ("original", "unlearned", *compared, "retrain") if self.metrics.get(n)]

    def plane(self) -> list[dict[str, Any]]:
        """Each measured model as a point (Dr, probe-Df): where the unlearned model sits between the
        original (classes in the features) and the retrain (classes never learnt)."""
        depth = (self.meta.get("recipe") or {}).get("depth")
        points = []
        for name in self.model_names():
            row = self.metrics[name]
            if row.get("dr") is not None and row.get("probe_df") is not None:
                label = f"unlearned (depth={depth})" if name == "unlearned" and depth else name
                points.append({"model": label, "dr": row["dr"], "probe_df": row["probe_df"]})
        return points

    def figures(self) -> dict[str, str]:
        """Caption -> base64 PNG, in page order."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out = {}
        classes = self.meta.get("class_names") or [str(i) for i in range(len(self.per_class["original"]))]
        fig, ax = plt.subplots(figsize=(8, 3))
        width = 0.8 / len(self.per_class)
        for i, (name, values) in enumerate(self.per_class.items()):
            ax.bar([c + i * width for c in range(len(values))], values, width, label=name)
        ax.set_xticks([c + 0.4 - width / 2 for c in range(len(classes))], classes, rotation=30, fontsize=8)
        ax.set_ylabel("test accuracy (%)")
        # Outside the axes: inside, the legend covered the bars of the last classes.
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        out[f"Test accuracy per class (%); forgotten: {self._forget_label()}"] = _png(fig)
        fig, ax = plt.subplots(figsize=(4, 4))
        for name, (fpr, tpr) in self.roc.items():
            ax.plot(fpr, tpr, label=f"{name} (AUC {self.metrics[name]['mia_forget_auc']:.3f})")
        ax.plot([0, 1], [0, 1], "k:", linewidth=0.8)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(fontsize=8, loc="lower right")
        out["Membership inference on the forget classes (ROC): members are forget-class training images, "
            "non-members forget-class test images; the diagonal is chance"] = _png(fig)
        points = self.plane()
        if len(points) > 1:
            fig, ax = plt.subplots(figsize=(5, 4))
            for point in points:
                ax.scatter(point["dr"], point["probe_df"], s=60, label=point["model"],
                           marker="*" if point["model"] in ("original", "retrain") else "o")
            ax.set_xlabel("Dr: retained-class test accuracy (%)")
            ax.set_ylabel("probe-Df: linear probe on the features (%)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
            out["Where the unlearned model sits: retained accuracy against what a linear probe still finds of "
                "the forget classes in its features (the original: top; a retrain: the classes never learnt)"] = \
                _png(fig)
        stages = self.probe_stages()
        if stages:
            fig, ax = plt.subplots(figsize=(6, 3.5))
            for name, points in stages.items():
                values = [p["probe_df"] for p in points]
                low = [p["probe_df"] - (p["interval"] or [p["probe_df"]] * 2)[0] for p in points]
                high = [(p["interval"] or [p["probe_df"]] * 2)[1] - p["probe_df"] for p in points]
                ax.errorbar(range(len(points)), values, yerr=[low, high], marker="o", capsize=3, label=name)
            labels = [p["stage"] for p in next(iter(stages.values()))]
            ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8)
            ax.set_ylabel("probe-Df (%)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
            out["probe-Df at every stage of the backbone, then at the head's input, with 95% intervals: where the "
                "forget classes can still be read in each model"] = _png(fig)
        for key, grid in self.images.items():
            out[key] = _png(_grid_figure(grid))
        return out

    def _forget_label(self) -> str:
        forget = self.meta.get("forget") or []
        names = self.meta.get("class_names") or []
        return ", ".join(f"{c} ({names[c]})" if c < len(names) and names[c] != str(c) else str(c) for c in forget)

    def _run_section(self) -> str:
        meta = self.meta
        rows = [("forgotten classes", self._forget_label()), ("seed", meta.get("seed")),
                ("images", f"{meta.get('train_images')} train (forget-class members and probe features), "
                           f"{meta.get('test_images')} test, {meta.get('retained_images')} retained "
                           "(rebound fine-tune)")]
        rows += [(f"sha256 of the {name} model's weights", f"<code>{html.escape(digest)}</code>")
                 for name, digest in (meta.get("sha256") or {}).items()]
        rows += [("versions", ", ".join(f"{k} {v}" for k, v in (meta.get("versions") or {}).items())),
                 ("audit time", f"{meta.get('seconds')} s")]
        cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td class='text'>"
                        f"{v if str(v).startswith('<code>') else html.escape(str(v))}</td></tr>" for k, v in rows)
        recipe = meta.get("recipe")
        if recipe:
            import yaml

            recipe_html = ("<details><summary>recipe of the unlearning run</summary><pre>"
                           f"{html.escape(yaml.safe_dump(recipe, sort_keys=False))}</pre></details>")
        else:
            recipe_html = "<p>The recipe of the unlearning run was not given to the audit.</p>"
        return f"<h2>Run</h2><table>{cells}</table>{recipe_html}"

    def html(self) -> str:
        figures = self.figures()
        names = self.model_names()
        head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
        body = []
        for key, label, unit in ROWS:
            cells = []
            for n in names:
                value = self.metrics[n].get(key)
                interval = (self.metrics[n].get("intervals") or {}).get(key)
                digits = (3 if isinstance(value, float) and abs(value) <= 1 and "mia" in key
                          else 0 if key == "relearn_steps" else 2)
                text = ("–" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value))
                if interval is not None:
                    text += f"<br><small>[{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]</small>"
                cells.append(f"<td>{text}</td>")
            body.append(f"<tr><th>{html.escape(label)}{' (' + unit + ')' if unit else ''}</th>{''.join(cells)}</tr>")
        imgs = "".join(f'<figure><img alt="{html.escape(k)}" src="data:image/png;base64,{v}"><figcaption>'
                       f"{html.escape(k)}</figcaption></figure>" for k, v in figures.items())
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>zeroshot-unlearn audit</title><style>"
            "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
            "th:first-child{text-align:left}td.text{text-align:left}figure{display:block;margin:16px 0}"
            "img{max-width:100%}figcaption{font-size:90%;color:#444}"
            "</style></head><body>"
            f"<h1>Unlearning audit: forget classes {html.escape(self._forget_label())}</h1>"
            "<p>Every metric of the evaluation protocol, for the original model, the unlearned model and, where "
            "given, a model retrained without the forget classes. Below a figure, in brackets: its 95% bootstrap "
            "interval over the images it was measured on (1,000 resamples); below relearn steps, the range of its runs.</p>"
            f"<table><tr><th>metric</th>{head}</tr>{''.join(body)}</table>{self._verdict_section()}"
            f"{self._stage_section()}{self._self_check_section()}{imgs}"
            f"{self._run_section()}</body></html>"
        )

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """``folder/report.json`` and ``folder/report.html``, written together atomically; a
        non-empty ``folder`` is refused unless ``overwrite``."""
        page = self.html()  # render first: a plotting failure must not leave a half-written folder
        with atomic_dir(folder, overwrite=overwrite) as tmp:
            write_json(tmp / "report.json", self.to_json())
            write_text(tmp / "report.html", page)
        return Path(folder)


# ----------------------------------------------------------------------------- the audit at ImageNet size


def _cell(figure: dict | None) -> str:
    if not figure:
        return "–"
    interval = figure.get("interval")
    text = f"{figure['value']:g}"
    if interval:
        text += f" [{interval[0]:.3g}, {interval[1]:.3g}]"
    return text + (" (capped)" if figure.get("capped") else "")


def _band_cell(summary: dict | None) -> str:
    if not summary:
        return "–"
    low, high = summary["range"]
    return f"{summary['median']:g} ({low:g}–{high:g})"


def scaled_rows(audit: Any) -> list[tuple[str, list[str]]]:
    """(label, one cell per model and the band) for every column of a :class:`~.at_scale.ScaledAudit`."""
    names = list(audit.rows)
    band = (audit.band or {}).get("summary", {})
    first = audit.rows[names[0]]
    lines = [(label, [_cell(audit.rows[n].get(key)) for n in names] + ["–"])
             for key, label in (("df", "Df (%)"), ("dr", "Dr (%)"), ("mia_forget_auc", "MIA-forget AUC"),
                                ("qmia_auc", "per-example MIA AUC"))]
    for key, label in (("relearn_head", "relearn steps, head alone"), ("relearn_tail", "relearn steps, last stage + head")):
        lines.append((label, [_cell(audit.rows[n].get(key)) for n in names] + [_band_cell(band.get(key))]))
    for stage in first["readable"]:
        for reader in ("probe", "knn"):
            lines.append((f"{'linear probe' if reader == 'probe' else str(audit.meta['knn']) + '-NN'} at {stage} (%)",
                          [_cell(audit.rows[n]["readable"][stage][reader]) for n in names]
                          + [_band_cell(band.get(f"{reader} {stage}"))]))
    return lines


def scaled_markdown(audit: Any) -> str:
    names = [*audit.rows, "never-learnt band: median (range)"]
    meta = audit.meta
    out = [f"# Audit at ImageNet size: class {meta['audited_class']}", "",
           *([meta["audited_class_note"] + ".", ""] if meta.get("audited_class_note") else []),
           f"Relearn target: Df {meta['relearn_target_df']}% (half the original's {meta['original_df']}%). "
           f"{meta['train_images']} training and {meta['test_images']} test images; "
           f"{meta['backbone_passes']} backbone passes ({meta['feature_seconds']} s); {meta['seconds']} s in all. "
           f"Sharing the original's backbone: {', '.join(meta['shared_backbone']) or 'none'}.", "",
           "| column | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    out += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in scaled_rows(audit)]
    for model, verdicts in audit.verdicts.items():
        out += ["", f"## {model}", ""]
        out += [f"- {v['column']}: {v['value']:g} — {v['verdict']}" for v in verdicts]
    return "\n".join(out) + "\n"


def scaled_html(audit: Any) -> str:
    names = [*audit.rows, "never-learnt band: median (range)"]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = "".join(f"<tr><td>{html.escape(label)}</td>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
                   + "</tr>" for label, cells in scaled_rows(audit))
    verdicts = "".join(f"<h2>{html.escape(model)}</h2><ul>" + "".join(
        f"<li>{html.escape(v['column'])}: {v['value']:g} — <b>{html.escape(v['verdict'])}</b></li>" for v in vs)
        + "</ul>" for model, vs in audit.verdicts.items())
    meta = html.escape(", ".join(f"{k}: {v}" for k, v in audit.meta.items()))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Audit at ImageNet size</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
            "padding:4px 8px;text-align:right}td:first-child{text-align:left}</style></head><body>"
            f"<h1>Audit at ImageNet size</h1><p>{meta}</p><table><tr><th>column</th>{head}</tr>{body}</table>"
            f"{verdicts}</body></html>")
