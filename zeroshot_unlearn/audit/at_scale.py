"""The audit at ImageNet size: every column from features computed once per backbone and split.

At 224 px a forward pass costs about a twentieth of a second per image on a 2-core CPU, and no retrained model
can be built, so the 32-px audit (a pass per model per split, relearn and rebound fine-tuning the whole model
against a retrained reference) cannot run as it is. This one:

- computes each split's pooled stage outputs, head input and (for the rows relearn reads) the activations at
  the input of the last stage **once per backbone**: a head-only run keeps the original's backbone, so the
  original, the unlearned model and the head that never had the class share one pass; each model's logits
  are its head on those features (:func:`~zeroshot_unlearn.surgery.check_linear_head`, run on every model
  first, refuses one for which they would not be);
- reads the forget class at every stage with a linear probe and a 5-NN, each fitted on the training split;
- measures membership inference (population and per-example) as at 32 px, from the cached logits;
- relearns with two attackers, each starting from the audited model's own weights: the head alone (on the
  cached head input), and the last stage plus the head (on the cached activations at the last stage's
  input); steps until Df reaches half the original's;
- and puts two references beside the original that need no retrained ImageNet model:
  **the never-learnt band** (each class of a folder the model never learnt, e.g. flower species that are not
  ImageNet classes, read and relearnt in the forget class's place) and **the head that never had the class**
  (the original with the forget classes' rows and biases drawn afresh, as a new head's are).

What each reference can and cannot stand for is on docs/imagenet.md ("The audit at 224 px").
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.datasets import iter_batches
from ..evaluation import mask_logits
from ..surgery import HeadInput, StageOutputs, backbone_stages, check_linear_head, classifier_head, fresh_rows
from .intervals import auc_of, mean_interval, two_sample_interval
from .metrics import Outputs, mia_forget, relearn_checks, weights_of
from .per_example import quantile_attack

log = logging.getLogger(__name__)

HEAD = "head input"
RELEARN_RUNS = 3
RELEARN_LR, RELEARN_MOMENTUM, RELEARN_BATCH = 0.01, 0.9, 32
"""The attackers' SGD: the 32-px audit's (:func:`~zeroshot_unlearn.audit.metrics.relearn_steps`)."""
HEAD_CAP, TAIL_CAP = 1000, 200
"""Relearn step caps: the head attacker's steps cost microseconds on cached features; the last stage's cost a
forward and backward of that stage on a batch."""
KNN = 5


# ----------------------------------------------------------------------------- features, once per backbone


@dataclass
class SplitFeatures:
    """One backbone pass over one split: pooled stage outputs, the head's input, labels, and the activations
    at the last stage's input for the rows in ``cut_rows``."""

    stages: dict[str, torch.Tensor]
    head_input: torch.Tensor
    y: torch.Tensor
    cut: torch.Tensor | None = None
    cut_rows: torch.Tensor | None = None

    def of(self, classes: Sequence[int]) -> torch.Tensor:
        return torch.isin(self.y, torch.as_tensor(list(classes)))

    def cut_of(self, classes: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(cut activations, labels) of the rows of ``classes`` that were kept."""
        keep = torch.isin(self.y[self.cut_rows], torch.as_tensor(list(classes)))
        return self.cut[keep], self.y[self.cut_rows][keep]


def backbone_digest(model: nn.Module) -> str:
    """sha256 of every tensor but the classifier head's: two models with the same digest give the same features."""
    model = weights_of(model)
    head = {id(p) for p in classifier_head(model).parameters()}
    digest = hashlib.sha256()
    for name, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) in head:
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def last_stage(model: nn.Module) -> str | None:
    stages = backbone_stages(weights_of(model))
    return stages[-1] if stages else None


class FeatureBank:
    """Split features by (backbone digest, split name): computed on first use, shared by every model with
    that backbone."""

    def __init__(self, progress: bool = False):
        self.cache: dict[tuple[str, str], SplitFeatures] = {}
        self.digests: dict[int, str] = {}
        self.progress = progress
        self.seconds = 0.0

    def digest(self, model: nn.Module) -> str:
        key = id(weights_of(model))
        if key not in self.digests:
            self.digests[key] = backbone_digest(model)
        return self.digests[key]

    @torch.no_grad()
    def get(self, model: nn.Module, split: str, data, cut_classes: Sequence[int] = ()) -> SplitFeatures:
        key = (self.digest(model), split)
        if key in self.cache:
            return self.cache[key]
        start = time.perf_counter()
        weights = weights_of(model)
        modes = [(m, m.training) for m in weights.modules()]
        weights.eval()
        cut_name = last_stage(weights)
        cut_values: list[torch.Tensor] = []
        handle = None
        if cut_name is not None and cut_classes:
            handle = weights.get_submodule(cut_name).register_forward_pre_hook(
                lambda _m, args: cut_values.append(args[0].detach().float().cpu()))
        labels, kept = [], []
        try:
            device = next(weights.parameters()).device
            with HeadInput(weights) as head_input, StageOutputs(weights) as stages:
                for x, y in iter_batches(data, 32):
                    weights(x.to(device))
                    y = torch.as_tensor(y)
                    labels.append(y)
                    if handle is not None:
                        keep = torch.isin(y, torch.as_tensor(list(cut_classes)))
                        cut_values[-1] = cut_values[-1][keep]
                        kept.append(keep)
        finally:
            if handle is not None:
                handle.remove()
            for module, training in modes:
                module.training = training
        y = torch.cat(labels)
        features = SplitFeatures({name: torch.cat(v) for name, v in stages.values.items()},
                                 torch.cat(head_input.values).float().cpu(), y)
        if handle is not None:
            features.cut = torch.cat(cut_values)
            features.cut_rows = torch.nonzero(torch.cat(kept)).flatten()
        self.cache[key] = features
        self.seconds += time.perf_counter() - start
        log.info("features of %s (%d images) in %.1fs", split, len(y), time.perf_counter() - start)
        return features


def logits_of(model: nn.Module, features: SplitFeatures) -> torch.Tensor:
    """The model's logits from its backbone's cached head input: its head on them, under its output mask."""
    head = classifier_head(weights_of(model))
    with torch.no_grad():
        logits = head(features.head_input.to(head.weight.device)).cpu()
    masked = getattr(model, "forget", None) if model is not weights_of(model) else None
    return mask_logits(logits, masked) if masked else logits


# ----------------------------------------------------------------------------- the references


def never_had_head(original: nn.Module, forget: Sequence[int], seed: int) -> nn.Module:
    """The original with the forget classes' head rows and biases drawn as a fresh head's of that shape are
    (``nn.Linear``'s own initialisation, seeded): the closest thing to a retrain that this backbone allows."""
    model = copy.deepcopy(weights_of(original))
    fresh_rows(classifier_head(model), forget, seed)
    return model


def load_never_learnt(folder: str | Path, model: nn.Module):
    """A folder of classes the model never learnt (``train/<class>/`` and ``test/<class>/``), read through the
    model's own transform, each class labelled ``num_classes + k`` (k: its sorted position): they are no class
    of the model's, so no id of its can collide with them. Returns (train, test, class names)."""
    from ..data.folder import FolderImages, model_transform
    from ..errors import DataError

    folder = Path(folder)
    cfg = model.pretrained_cfg
    names = sorted(p.name for p in (folder / "train").iterdir() if p.is_dir()) if (folder / "train").is_dir() else []
    if not names or not (folder / "test").is_dir():
        raise DataError(f"{folder} is not a folder of never-learnt classes: it needs train/<class>/ and test/<class>/")
    offset = int(cfg.get("num_classes") or classifier_head(weights_of(model)).out_features)
    transform = model_transform(cfg["input_size"], cfg["mean"], cfg["std"], cfg)
    splits = []
    for split in ("train", "test"):
        paths, labels = [], []
        for k, name in enumerate(names):
            files = sorted(p for p in (folder / split / name).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
            paths += [str(p) for p in files]
            labels += [offset + k] * len(files)
        splits.append(FolderImages(paths, torch.tensor(labels), transform, None, cfg["input_size"], "RGB"))
    return splits[0], splits[1], names


# ----------------------------------------------------------------------------- reading a class from the features


def _standardised(train: torch.Tensor, test: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    mean, std = train.mean(0), train.std(0).clamp(min=1e-6)
    return ((train - mean) / std).numpy(), ((test - mean) / std).numpy()


def probe_and_knn(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                  test_y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per test image: is it called its class by a linear probe (PROTOCOL.md's: standardised, multinomial
    logistic regression, C = 1) and by a 5-NN (cosine on standardised features, majority vote) fitted on
    ``train``?"""
    from sklearn.linear_model import LogisticRegression

    train_s, test_s = _standardised(train_x, test_x)
    probe = LogisticRegression(C=1.0, max_iter=3000).fit(train_s, train_y.numpy())
    by_probe = probe.predict(test_s) == test_y.numpy()
    a = F.normalize(torch.from_numpy(test_s), dim=1)
    b = F.normalize(torch.from_numpy(train_s), dim=1)
    nearest = (a @ b.T).topk(min(KNN, len(b)), dim=1).indices
    votes = train_y[nearest]
    by_knn = torch.mode(votes, dim=1).values.numpy() == test_y.numpy()
    return by_probe, by_knn


def _readability(train: SplitFeatures, test_x: dict[str, torch.Tensor], test_y: torch.Tensor, train_rows: torch.Tensor,
                 extra: tuple[dict[str, torch.Tensor], torch.Tensor] | None, seed: int) -> dict[str, dict]:
    """Probe and k-NN at every stage and the head input: fitted on ``train``'s ``train_rows`` (plus ``extra``'s
    features and labels), scored on ``test_x``/``test_y``."""
    out = {}
    for stage in [*train.stages, HEAD]:
        source = train.head_input if stage == HEAD else train.stages[stage]
        x, y = source[train_rows], train.y[train_rows]
        if extra is not None:
            x, y = torch.cat([x, extra[0][stage]]), torch.cat([y, extra[1]])
        by_probe, by_knn = probe_and_knn(x, y, test_x[stage], test_y)
        out[stage] = {"probe": _figure(by_probe, seed), "knn": _figure(by_knn, seed)}
    return out


def _figure(correct: np.ndarray, seed: int) -> dict[str, Any]:
    return {"value": round(float(np.mean(correct) * 100), 2), "interval": mean_interval(correct, seed=seed),
            "n": int(len(correct))}


def _stage_view(features: SplitFeatures, rows: torch.Tensor) -> dict[str, torch.Tensor]:
    view = {name: value[rows] for name, value in features.stages.items()}
    view[HEAD] = features.head_input[rows]
    return view


# ----------------------------------------------------------------------------- relearn


def _relearn(forward: nn.Module, params: list[torch.nn.Parameter], train_x: torch.Tensor, train_y: torch.Tensor,
             test: Callable[[nn.Module], float], target: float, seed: int, cap: int) -> tuple[int, bool]:
    """SGD steps (:data:`RELEARN_BATCH` images drawn with replacement, :data:`RELEARN_LR`, momentum; eval mode)
    until ``test(forward) >= target``,
    checked at :func:`~zeroshot_unlearn.audit.metrics.relearn_checks`; (steps, capped)."""
    if test(forward) >= target:
        return 0, False
    optimizer = torch.optim.SGD(params, lr=RELEARN_LR, momentum=RELEARN_MOMENTUM)
    rng = torch.Generator().manual_seed(seed)
    checks = set(relearn_checks(cap))
    for step in range(1, cap + 1):
        rows = torch.randint(len(train_x), (RELEARN_BATCH,), generator=rng)
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(forward(train_x[rows]), train_y[rows]).backward()
        optimizer.step()
        if step in checks and test(forward) >= target:
            return step, False
    return cap, True


class Tail(nn.Module):
    """The model from the input of its last stage on: the trunk runs on a one-image stub (cheap next to a batch)
    and the stage's input is swapped for the given activations, so the model's own forward (its last stage,
    pooling, norms and head) runs from there. Only the parameters of the modules that start at the cut or
    later train (``params``); the model stays in eval mode."""

    def __init__(self, model: nn.Module, cut: str):
        super().__init__()
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.stub = torch.zeros(1, *model.pretrained_cfg["input_size"], device=self.device)
        self.given: torch.Tensor | None = None
        cut_module = model.get_submodule(cut)
        started: list[nn.Module] = []
        hooks = [m.register_forward_pre_hook(lambda mod, _args: started.append(mod)) for m in model.modules()]
        try:
            with torch.no_grad():
                model(self.stub)
        finally:
            for hook in hooks:
                hook.remove()
        tail = {id(m) for m in started[started.index(cut_module):]}
        self.params = [p for m in model.modules() if id(m) in tail for p in m.parameters(recurse=False)]
        for p in model.parameters():
            p.requires_grad_(False)
        for p in self.params:
            p.requires_grad_(True)
        self.handle = cut_module.register_forward_pre_hook(lambda _m, args: (self.given,) if self.given is not None
                                                            else None)

    def forward(self, activations: torch.Tensor) -> torch.Tensor:
        self.given = activations.to(self.device)
        try:
            return self.model(self.stub).cpu()
        finally:
            self.given = None


def _df(logits: torch.Tensor, target_class: int) -> float:
    return float((logits.argmax(1) == target_class).float().mean() * 100)


def relearn_head(model: nn.Module, train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                 target_class: int, target: float, seed: int, runs: int = RELEARN_RUNS, cap: int = HEAD_CAP) -> dict:
    """The head-alone attacker from ``model``'s own head, on cached head inputs, ``runs`` batch orders."""
    steps = []
    for run in range(runs):
        head = copy.deepcopy(classifier_head(weights_of(model))).cpu().train()  # cached features live on the CPU
        test = lambda h: _df(h(test_x), target_class)  # noqa: E731
        steps.append(_relearn(head, list(head.parameters()), train_x, train_y, torch.no_grad()(test), target,
                              seed + run, cap))
    return _steps_row(steps)


def relearn_tail(model: nn.Module, train_cut: torch.Tensor, train_y: torch.Tensor, test_cut: torch.Tensor,
                 test_head_input: torch.Tensor, target_class: int, target: float, seed: int,
                 runs: int = RELEARN_RUNS, cap: int = TAIL_CAP) -> dict | None:
    """The last-stage-plus-head attacker from ``model``'s own weights, on cached activations at the last stage's
    input (``test_head_input``: the same test rows' cached head input, which the tail must reproduce); None (with
    the reason logged) where the model cannot be run from there."""
    cut = last_stage(model)
    if cut is None:
        return None
    steps = []
    for run in range(runs):
        tail = Tail(copy.deepcopy(weights_of(model)), cut)
        if run == 0 and not _tail_agrees(tail, test_cut, test_head_input):
            log.warning("relearn (last stage + head) skipped: the model's output is not a function of its last "
                        "stage's input alone")
            return None
        test = lambda t: _df(t(test_cut), target_class)  # noqa: E731
        steps.append(_relearn(tail, tail.params, train_cut, train_y, torch.no_grad()(test), target, seed + run,
                              cap))
        tail.handle.remove()
    return _steps_row(steps)


@torch.no_grad()
def _tail_agrees(tail: Tail, cut: torch.Tensor, head_input: torch.Tensor) -> bool:
    """Run from the cached activations at the cut, the tail reaches the head with the head input cached for the
    same rows in the full pass (two rows checked): the model's output is a function of its last stage's input."""
    if len(cut) == 0:
        return True
    with HeadInput(tail.model) as captured:
        tail(cut[:2])
    return bool(torch.allclose(captured.value.cpu(), head_input[:2], rtol=1e-4, atol=1e-4))


def _steps_row(steps: list[tuple[int, bool]]) -> dict:
    values = sorted(s for s, _ in steps)
    return {"value": values[len(values) // 2], "interval": [float(values[0]), float(values[-1])], "runs": values,
            "capped": any(c for _, c in steps)}


# ----------------------------------------------------------------------------- the audit


@dataclass
class ScaledAudit:
    """What :func:`audit_at_scale` measured: a row per model, the never-learnt band, the verdicts."""

    rows: dict[str, dict[str, Any]]
    band: dict[str, Any] | None
    verdicts: dict[str, list[dict[str, Any]]]
    meta: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"meta": self.meta, "rows": self.rows, "band": self.band, "verdicts": self.verdicts}

    def metrics_row(self, name: str) -> dict[str, Any]:
        """The columns a results row carries (``AUDIT_COLUMNS``) that this audit measures, for model ``name``:
        relearn steps are the head attacker's, probe-Df the probe at the head's input."""
        row = self.rows[name]
        return {"mia_forget_auc": row["mia_forget_auc"]["value"], "qmia_auc": row["qmia_auc"]["value"],
                "relearn_steps": row["relearn_head"]["value"],
                "probe_df": row["readable"][HEAD]["probe"]["value"]}

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        from ..io import atomic_dir, write_json
        from .report import scaled_html, scaled_markdown

        with atomic_dir(Path(folder), overwrite=overwrite) as out:
            write_json(out / "report.json", self.as_dict())
            (out / "report.md").write_text(scaled_markdown(self), encoding="utf-8")
            (out / "report.html").write_text(scaled_html(self), encoding="utf-8")
        return Path(folder)


def audit_at_scale(original: nn.Module, models: Mapping[str, nn.Module], forget: Sequence[int], *, train, test,
                   never_learnt: str | Path | None = None, seed: int = 0, progress: bool = False,
                   relearn_caps: tuple[int, int] = (HEAD_CAP, TAIL_CAP)) -> ScaledAudit:
    """The audit of ``models`` (name -> unlearned model) against ``original`` at ImageNet size (module docstring).

    ``train``/``test``: the model's classes, images read through its transform (train: the images relearn and
    the probes fit on, members for the MIA; test: non-members and the Df/Dr split). ``never_learnt``: a folder
    of classes the model never learnt (``train/`` and ``test/``); without it there is no band and the verdicts
    say so. One forget class at a time is what the band and relearn read: a request of several classes is
    audited on its first. ``relearn_caps``: the step caps of the head and the last-stage attackers.
    """
    from ..errors import DataError

    start = time.perf_counter()
    forget = list(forget)
    target_class = forget[0]
    for model in (original, *models.values()):
        check_linear_head(weights_of(model), weights_of(model).pretrained_cfg["input_size"])
    for split, data in (("training", train), ("test", test)):
        if not bool((data.y == target_class).any()):
            raise DataError(f"the audit at ImageNet size needs {split} images of the audited class {target_class} "
                            "(members and relearn data; non-members and Df): the split has none")
    bank = FeatureBank(progress)
    reference = never_had_head(original, forget, seed)
    everyone = {"original": original, **models, "head that never had the class": reference}
    shown = sorted(set(train.y.tolist()))
    retained_shown = [c for c in shown if c not in forget]
    rows: dict[str, dict[str, Any]] = {}
    original_test = bank.get(original, "test", test, cut_classes=forget)
    original_df = _df(logits_of(original, original_test)[original_test.of([target_class])], target_class)
    if original_df == 0:
        raise DataError(f"the original calls none of class {target_class}'s test images that class, so relearning "
                        "it to half the original's Df means nothing: audit a class the original recognises")
    target = 0.5 * original_df
    readable: dict[str, dict] = {}  # by backbone: the probes read features, which a head-only run leaves as they were
    for name, model in everyone.items():
        tr = bank.get(model, "train", train, cut_classes=forget)
        te = bank.get(model, "test", test, cut_classes=forget)
        rows[name] = _model_row(model, tr, te, forget, target_class, target, retained_shown, seed,
                                readable.get(bank.digest(model)), relearn_caps)
        readable[bank.digest(model)] = rows[name]["readable"]
    band = None
    if never_learnt is not None:
        band = _band(original, reference, bank, train, never_learnt, forget, target_class, target, retained_shown,
                     seed, relearn_caps)
    verdicts = {name: _verdicts(rows[name], rows, band) for name in models}
    meta = {"forget": forget, "audited_class": target_class,
            "audited_class_note": None if len(forget) == 1 else (
                f"Df, Dr and the MIA read every forget class; the probes, k-NN, relearn and the band read class "
                f"{target_class} alone"), "relearn_target_df": round(target, 2),
            "original_df": round(original_df, 2), "train_images": len(train), "test_images": len(test),
            "never_learnt": str(never_learnt) if never_learnt is not None else None,
            "backbone_passes": len(bank.cache), "knn": KNN, "feature_seconds": round(bank.seconds, 1),
            "seconds": round(time.perf_counter() - start, 1), "seed": seed,
            "shared_backbone": sorted(n for n, m in everyone.items()
                                      if bank.digest(m) == bank.digest(original) and n != "original")}
    return ScaledAudit(rows, band, verdicts, meta)


def _model_row(model, tr: SplitFeatures, te: SplitFeatures, forget, target_class, target, retained_shown, seed,
               readable=None, caps=(HEAD_CAP, TAIL_CAP)):
    train_logits, test_logits = logits_of(model, tr), logits_of(model, te)
    test_forget, test_retained = te.of(forget), te.of(retained_shown)
    train_forget = tr.of(forget)
    forget_correct = (test_logits[test_forget].argmax(1) == te.y[test_forget]).numpy()
    retained_correct = (test_logits[test_retained].argmax(1) == te.y[test_retained]).numpy()
    members = Outputs(train_logits[train_forget], tr.head_input[train_forget], tr.y[train_forget])
    nonmembers = Outputs(test_logits[test_forget], te.head_input[test_forget], te.y[test_forget])
    reference = Outputs(test_logits[test_retained], te.head_input[test_retained], te.y[test_retained])
    attack = mia_forget(members, nonmembers, seed=seed)
    per_example = quantile_attack(members, nonmembers, reference, seed=seed)
    if readable is None:
        readable = _readability(tr, _stage_view(te, torch.nonzero(te.of([target_class])).flatten()),
                                te.y[te.of([target_class])],
                                torch.nonzero(tr.of(retained_shown + [target_class])).flatten(), None, seed)
    head_x, head_y = tr.head_input[tr.of([target_class])], tr.y[tr.of([target_class])]
    test_x = te.head_input[te.of([target_class])]
    row = {
        "df": _figure(forget_correct, seed), "dr": _figure(retained_correct, seed),
        "mia_forget_auc": {"value": round(attack.auc, 3), "interval": two_sample_interval(
            auc_of, attack.member_scores, attack.nonmember_scores, seed=seed)},
        "qmia_auc": {"value": round(per_example.auc, 3), "interval": two_sample_interval(
            auc_of, per_example.member_scores, per_example.nonmember_scores, seed=seed)},
        "readable": readable,
        "relearn_head": relearn_head(model, head_x, head_y, test_x, target_class, target, seed, cap=caps[0]),
    }
    if tr.cut is not None:
        train_cut, cut_y = tr.cut_of([target_class])
        test_cut, _ = te.cut_of([target_class])
        row["relearn_tail"] = relearn_tail(model, train_cut, cut_y, test_cut, test_x, target_class, target, seed,
                                           cap=caps[1])
    return row


def _band(original, reference, bank, train, folder, forget, target_class, target, retained_shown, seed,
          caps=(HEAD_CAP, TAIL_CAP)):
    """Each never-learnt class in the forget class's place: read (probe, k-NN at every stage, fitted on the
    retained classes' training images plus its own) and relearnt from the head that never had the class (its
    images labelled with the forget class's id)."""
    flowers_train, flowers_test, names = load_never_learnt(folder, original)
    species = sorted(set(flowers_train.y.tolist()))
    ftr = bank.get(original, "never-learnt train", flowers_train, cut_classes=species)
    fte = bank.get(original, "never-learnt test", flowers_test, cut_classes=species)
    tr = bank.get(original, "train", train, cut_classes=forget)
    retained_rows = torch.nonzero(tr.of(retained_shown)).flatten()
    per_class = {}
    for name, k in zip(names, species):
        train_rows, test_rows = torch.nonzero(ftr.y == k).flatten(), torch.nonzero(fte.y == k).flatten()
        as_forget = torch.full((len(train_rows),), target_class)
        readable = _readability(tr, _stage_view(fte, test_rows), torch.full((len(test_rows),), target_class),
                                retained_rows, (_stage_view(ftr, train_rows), as_forget), seed)
        entry = {"readable": readable,
                 "relearn_head": relearn_head(reference, ftr.head_input[train_rows], as_forget,
                                              fte.head_input[test_rows], target_class, target, seed, runs=1,
                                              cap=caps[0])}
        if ftr.cut is not None:
            cut_train, _ = ftr.cut_of([k])
            cut_test, _ = fte.cut_of([k])
            entry["relearn_tail"] = relearn_tail(reference, cut_train, torch.full((len(cut_train),), target_class),
                                                 cut_test, fte.head_input[test_rows], target_class, target, seed,
                                                 runs=1, cap=caps[1])
        per_class[name] = entry
    return {"classes": per_class, "summary": _band_summary(per_class)}


def _band_summary(per_class: Mapping[str, dict]) -> dict[str, Any]:
    """Per column: the band's median, its range over the classes, and the hull of their intervals."""
    summary: dict[str, Any] = {}
    first = next(iter(per_class.values()))
    for stage in first["readable"]:
        for reader in ("probe", "knn"):
            values = [c["readable"][stage][reader] for c in per_class.values()]
            summary[f"{reader} {stage}"] = _hull(values)
    for key in ("relearn_head", "relearn_tail"):
        values = [c[key] for c in per_class.values() if c.get(key)]
        if values:
            summary[key] = _hull(values)
    return summary


def _hull(figures: list[dict]) -> dict[str, Any]:
    values = [f["value"] for f in figures]
    lows = [f["interval"][0] for f in figures if f.get("interval")]
    highs = [f["interval"][1] for f in figures if f.get("interval")]
    return {"median": float(np.median(values)), "range": [float(min(values)), float(max(values))],
            "hull": [float(min(lows)), float(max(highs))] if lows else None}


def _overlap(a, b) -> bool:
    return a is not None and b is not None and a[0] <= b[1] and b[0] <= a[1]


def _verdicts(row, rows, band) -> list[dict[str, Any]]:
    """Each column of ``row`` against the original and the references: "like a never-learnt class" (its interval
    meets the band's range), "like the original", "between", or "below the band" (harder to read or relearn than
    a class the model never learnt: that gives the deletion away)."""
    original = rows["original"]
    never_had = rows["head that never had the class"]
    out = []
    columns = [("relearn_head", "relearn steps, head alone"), ("relearn_tail", "relearn steps, last stage + head")]
    columns += [(("readable", stage, reader), f"{reader} at {stage}") for stage in row["readable"]
                for reader in ("probe", "knn")]
    for key, label in columns:
        mine, theirs = _lookup(row, key), _lookup(original, key)
        if mine is None or theirs is None:
            continue
        summary = None if band is None else band["summary"].get(
            key if isinstance(key, str) else f"{key[2]} {key[1]}")
        like_original = _overlap(mine["interval"], theirs["interval"]) or mine["value"] == theirs["value"]
        verdict = {"column": label, "value": mine["value"], "interval": mine["interval"], "original": theirs["value"]}
        if key in ("relearn_head", "relearn_tail") and _lookup(never_had, key) is not None:
            verdict["never_had_head"] = _lookup(never_had, key)["value"]
        if summary is None:
            verdict["verdict"] = ("like the original" if like_original else "unlike the original") + \
                " (no never-learnt band: pass a folder of classes the model never learnt)"
        else:
            band_range = summary["range"] if key in ("relearn_head", "relearn_tail") else summary["hull"]
            verdict["band"] = band_range
            in_band = _overlap(mine["interval"], band_range)
            higher_is_forgotten = key in ("relearn_head", "relearn_tail")
            below = (mine["interval"][0] > band_range[1]) if higher_is_forgotten else (mine["interval"][1] < band_range[0])
            verdict["verdict"] = ("like a never-learnt class" if in_band and not like_original else
                                  "like the original and like a never-learnt class (the references overlap)"
                                  if in_band else "like the original" if like_original else
                                  "below the band (gives the deletion away)" if below else "between")
        out.append(verdict)
    return out


def _lookup(row: Mapping[str, Any], key) -> dict | None:
    if isinstance(key, str):
        return row.get(key)
    _, stage, reader = key
    return (row.get("readable") or {}).get(stage, {}).get(reader)


def model_side(model: nn.Module) -> int:
    size = (getattr(weights_of(model), "pretrained_cfg", None) or {}).get("input_size") or ()
    return min(size[1:]) if len(size) == 3 else 0


__all__ = ["audit_at_scale", "ScaledAudit", "FeatureBank", "never_had_head", "load_never_learnt", "probe_and_knn",
           "model_side"]
