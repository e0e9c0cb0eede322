"""Protocol suites -> ``results.json`` (one row per request) and a markdown table.

Suites and requests follow ``PROTOCOL.md``: every single class, the pairs {3,7} {0,2}
{1,9} {4,5} and {0,1,2,3,4}; zero forget images; a class-balanced retained subset.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..api import forget_classes
from ..audit import AUDIT_COLUMNS, AUDIT_LEVELS, model_metrics, relearn_ratio
from ..data import DataSplits, load_data, retained_subset
from ..errors import InvalidRequestError
from ..evaluation import accuracy, data_logits, forget_retain_accuracy, logits_df_dr, original_columns
from ..io import write_json, write_text
from ..methods import get_method
from ..runtime import peak_memory as process_peak
from ..validate import retained_classes
from ..zoo import load_model
from .specs import DIGITS_TRAIN, get_train_spec, list_train_specs
from .training import retrain_reference, retrain_reference_source, train_checkpoint

log = logging.getLogger(__name__)

PROTOCOL_REQUESTS: list[list[int]] = [[c] for c in range(10)] + [[3, 7], [0, 2], [1, 9], [4, 5], [0, 1, 2, 3, 4]]
"""The 10-class suites' requests (PROTOCOL.md)."""
CIFAR100_SUPERCLASSES: dict[str, list[int]] = {"vehicles_2": [41, 69, 81, 85, 89], "people": [2, 11, 35, 46, 98]}
"""The CIFAR-100 superclasses PROTOCOL.md requests (fine label ids, from ``cifar100/superclasses.json``)."""
CIFAR100_REQUESTS: list[list[int]] = ([[69], [51], [2], [40], [71]] + list(CIFAR100_SUPERCLASSES.values())
                                      + [list(range(10)), list(range(50)), list(range(90))])
"""The CIFAR-100 suites' requests (PROTOCOL.md): rocket, mushroom, baby, lamp, sea; vehicles_2 and
people; ten, fifty and ninety classes."""


IMAGENETTE = [0, 217, 482, 491, 497, 566, 569, 571, 574, 701]
"""The ten Imagenette classes (ImageNet-1k ids): tench, English springer, cassette player, chain saw,
church, French horn, garbage truck, gas pump, golf ball, parachute."""
IMAGEWOOF = [155, 159, 162, 167, 182, 193, 207, 229, 258, 273]
"""The ten Imagewoof dog breeds: a fine-grained group of similar classes."""
IMAGENET_REQUESTS: list[list[int]] = [[0], [574, 701], [258], list(IMAGEWOOF), list(IMAGENETTE)]
"""tench; golf ball and parachute; Samoyed, one breed among nine similar ones; all ten dog breeds; all ten
Imagenette classes (issue 37)."""


@dataclass
class Suite:
    name: str
    load: Callable[[str | None], tuple[nn.Module, DataSplits]]
    full_train_per_class: Callable[[DataSplits], list[int]]
    default_budget: int
    retrain: Callable[[DataSplits, list[int]], tuple[nn.Module | None, float | None]] | None = None
    requests: list[list[int]] = field(default_factory=lambda: [list(r) for r in PROTOCOL_REQUESTS])
    """What ``--requests protocol`` runs on this suite."""
    retain_from: list[int] | None = None
    """The classes whose training images the retained subset is drawn from (None: every class the data has)."""
    epoch_probe: tuple[int, int] = (128, 20)
    """(batch size, steps) of the timed training steps that epoch-equivalents divide by."""
    per_class_columns: bool = False
    """Rows also carry Dr on the retained classes with and without retained images, and the MIA-forget AUC
    of each forget class on its own members and non-members."""


def _digits(_data_dir: str | None):
    model = load_model("digits_cnn", pretrained=True)
    return model, load_data("digits", model)


def _need_data_dir(suite: str, data_dir: str | None, holding: str = "cifar10_*.npz") -> Path:
    if data_dir is None:
        raise InvalidRequestError(f"suite {suite} needs --data-dir (a folder with {holding}"
                                  + ("; the CIFAR-10 ResNet suites also read its checkpoints/ folder)"
                                     if holding.startswith("cifar10_") else ")"))
    if not Path(data_dir).is_dir():
        raise InvalidRequestError(f"suite {suite}: --data-dir {data_dir} does not exist")
    return Path(data_dir)


def _zoo_cifar(depth: int, file: str):
    def load(data_dir: str | None):
        model = load_model(f"cifar10_resnet{depth}", _need_data_dir(f"cifar10-resnet{depth}", data_dir)
                           / "checkpoints" / file)
        return model, load_data(data_dir, model)

    return load


def _trained_cifar(spec_name: str):
    """A suite on this project's own checkpoint of a timm family (trained once, then read from the cache)."""

    def load(data_dir: str | None):
        spec = get_train_spec(spec_name)
        data = load_data(_need_data_dir(f"cifar10-{spec_name}", data_dir), spec.build())
        return load_model(checkpoint=train_checkpoint(spec, data, progress=True).path), data

    return load


def _digits_retrain(data: DataSplits, forget: list[int]):
    return retrain_reference("digits_cnn", data.train, forget, DIGITS_TRAIN, progress=False)


def _cifar_per_class(_data: DataSplits) -> list[int]:
    # Epoch-equivalents count the full CIFAR-10 training set (5,000 per class, PROTOCOL.md), also for
    # checkpoints this project trained on the shipped 1,000-per-class subset.
    return [5000] * 10


def _cifar100_folder(suite: str, data_dir: str | None) -> Path:
    """The CIFAR-100 npz folder: ``--data-dir`` itself or its ``cifar100/`` (so ``../shared/data`` works too)."""
    folder = Path(_need_data_dir(suite, data_dir, "cifar100_*.npz"))
    return folder / "cifar100" if (folder / "cifar100").is_dir() else folder


def _cifar100(model_name: str):
    def load(data_dir: str | None):
        model = load_model(model_name, pretrained=True)
        data = load_data(_cifar100_folder(f"cifar100-{model_name.removeprefix('cifar100_')}", data_dir), model)
        if len(data.classes) != 100:
            raise InvalidRequestError(f"the cifar100 suites need CIFAR-100 data (100 classes); "
                                      f"{data_dir} holds {len(data.classes)}")
        return model, data

    return load


def _shipped_cifar100_retrain(model_name: str):
    """The shipped or cached retrain reference of a request (rocket's is shipped); a run never trains one."""

    def retrain(data: DataSplits, forget: list[int]):
        from .specs import CIFAR100_RESNET_TRAIN

        if retrain_reference_source(model_name, data.train, forget, CIFAR100_RESNET_TRAIN) is None:
            return None, None
        return retrain_reference(model_name, data.train, forget, CIFAR100_RESNET_TRAIN, progress=False)

    return retrain


SUITES: dict[str, Suite] = {
    "digits": Suite("digits", _digits, lambda d: torch.bincount(d.train.y, minlength=10).tolist(), 400,
                    _digits_retrain),
    **{f"cifar10-resnet{depth}": Suite(f"cifar10-resnet{depth}", _zoo_cifar(depth, file), _cifar_per_class, 2500)
       for depth, file in ((20, "resnet20-12fca82f.th"), (32, "resnet32-d509ac18.th"), (44, "resnet44-014dd654.th"))},
}


def _imagenet_lite0(data_dir: str | None):
    """The real ImageNet-1k EfficientNet-Lite0 (PyPI weights) and the 20-class ImageNet subset, both through
    the library's own loaders (images read from disk through the model's own transform)."""
    folder = _need_data_dir("imagenet-efficientnet_lite0", data_dir, "imagenet-subset/")
    folder = folder / "imagenet-subset" if (folder / "imagenet-subset").is_dir() else folder
    model = load_model("tf_efficientnet_lite0", pretrained=True)
    return model, load_data(folder, model)


def _imagenet_per_class(_data: DataSplits) -> list[int]:
    # Epoch-equivalents count ImageNet-1k's whole training set: 1,281,167 images, ~1,281 per class.
    return [1281167 // 1000] * 1000


for _suite, _retain_from in (("imagenet-efficientnet_lite0", None),
                             ("imagenet-efficientnet_lite0-nette", IMAGENETTE)):
    # The second suite draws its retained images from the Imagenette classes alone: the dog breeds are
    # then classes no retained image shows (its requests leave out all ten Imagenette classes, which
    # would leave it no retained image at all).
    SUITES[_suite] = Suite(_suite, _imagenet_lite0, _imagenet_per_class, 800,
                           requests=[list(r) for r in IMAGENET_REQUESTS if _retain_from is None or r != IMAGENETTE],
                           retain_from=_retain_from, epoch_probe=(16, 3), per_class_columns=True)

for _name in list_train_specs():
    if get_train_spec(_name).data == "cifar10":
        SUITES[f"cifar10-{_name}"] = Suite(f"cifar10-{_name}", _trained_cifar(_name), _cifar_per_class, 2500)
for _name in ("cifar100_resnet20", "cifar100_resnet56", "cifar100_resnet10t"):
    # Epoch-equivalents count the whole CIFAR-100 training set: 500 images per class.
    SUITES[_name.replace("_", "-")] = Suite(_name.replace("_", "-"), _cifar100(_name), lambda _d: [500] * 100, 2500,
                                            _shipped_cifar100_retrain(_name), [list(r) for r in CIFAR100_REQUESTS])


def training_step_seconds(model: nn.Module, input_size: Sequence[int], *, batch_size: int = 128,
                          steps: int = 20) -> tuple[float, float]:
    """Seconds per training image of ``model``: (wall clock, this process's CPU time).

    ``steps`` timed SGD steps on a copy of ``model`` with random inputs of its input size, in this
    process, so that epoch-equivalents compare like with like on the same machine. The CPU-time
    figure does not count time other processes took from this one (a shared machine).
    """
    probe = copy.deepcopy(model).train()
    optimizer = torch.optim.SGD(probe.parameters(), lr=1e-3, momentum=0.9)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        x = torch.randn(batch_size, *input_size)
        logits = probe(x[:2])
        y = torch.randint(logits.shape[1], (batch_size,))
        for step in range(steps + 2):
            if step == 2:  # two warm-up steps
                start, start_cpu = time.perf_counter(), time.process_time()
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(probe(x), y).backward()
            optimizer.step()
    images = steps * batch_size
    return (time.perf_counter() - start) / images, (time.process_time() - start_cpu) / images


def peak_memory() -> dict:
    """Resident peaks so far, in GiB: this process (:func:`~zeroshot_unlearn.runtime.peak_memory`), and the largest
    of its finished children (DataLoader workers). A process's peak never falls, so a bench row's figure is the
    run's peak up to that row."""
    import resource
    import sys

    scale = (1 if sys.platform == "darwin" else 1024) / 2**30  # ru_maxrss: KiB on Linux, bytes on macOS
    return {"process": round(process_peak("cpu")["gib"], 3),
            "largest_child": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale, 3)}


def split_columns(logits: torch.Tensor, test, forget: list[int], retain, *, masked: bool = False,
                  suffix: str = "") -> dict[str, float | None]:
    """Dr on the retained classes with retained images (``dr_shown``) and without (``dr_unshown``), in
    percent, from a model's ``logits`` on ``test``; with ``masked`` also the ceilings (the forget logits
    masked). None where a group is empty."""
    from ..evaluation import mask_logits

    shown = torch.as_tensor(sorted(set(retain.y.tolist())))
    is_forget = torch.isin(test.y, torch.as_tensor(forget))
    groups = {"shown": torch.isin(test.y, shown) & ~is_forget, "unshown": ~torch.isin(test.y, shown) & ~is_forget}
    out: dict[str, float | None] = {}
    for name, rows in groups.items():
        if not rows.any():
            out[f"dr_{name}{suffix}"] = None
            if masked:
                out[f"dr_{name}_ceiling"] = None
            continue
        out[f"dr_{name}{suffix}"] = float((logits[rows].argmax(1) == test.y[rows]).float().mean() * 100)
        if masked:
            hits = mask_logits(logits[rows], forget).argmax(1) == test.y[rows]
            out[f"dr_{name}_ceiling"] = float(hits.float().mean() * 100)
    return out


def mia_per_class(model: nn.Module, data: DataSplits, forget: list[int], seed: int) -> dict[str, float]:
    """The MIA-forget AUC of each forget class: its training images (members) against its test images."""
    from ..audit.metrics import mia_forget, model_outputs

    out = {}
    for c in forget:
        members, nonmembers = data.train.of_classes([c]), data.test.of_classes([c])
        if len(members) and len(nonmembers):
            out[str(c)] = round(mia_forget(model_outputs(model, members), model_outputs(model, nonmembers),
                                           seed=seed).auc, 4)
    return out


def parse_requests(text: str) -> list[list[int]] | None:
    """``3,7;0;1,9`` -> list of class lists; ``protocol`` -> None (each suite's own requests)."""
    if text == "protocol":
        return None
    try:
        return [[int(c) for c in part.split(",")] for part in text.replace(" ", "").split(";") if part]
    except ValueError:
        raise InvalidRequestError(f"--requests must be 'protocol' or class lists like '3,7;0;1,9', got {text!r}") \
            from None


def data_used(method: str) -> str:
    """What a row's model was made from, for the tables."""
    if method == "original":
        return "–"
    if method == "retrain":
        return "full train minus forget"
    needs = get_method(method).needs
    names = {"retain": "retain", "forget": "forget", "training_log": "training log"}
    return " + ".join(label for n, label in names.items() if n in needs) or "none"


def _settings(suite, seed, budget, overrides, methods, audit, generator=None, seeds: int = 1) -> dict:
    settings = {"suite": suite, "seed": seed, "retain_budget": budget, "overrides": dict(overrides or {}),
                "methods": list(methods), "audit": audit}
    if generator is not None:
        settings["generator"] = str(generator)
    if seeds > 1:  # absent for one seed, so files written before --seeds still resume
        settings["seeds"] = seeds
    return settings


def _resumable_rows(results_file: Path | None, settings: dict) -> list[dict]:
    """Rows of an earlier run with the same settings (``resume``); anything else is ignored with a warning."""
    if results_file is None or not results_file.is_file():
        return []
    earlier = json.loads(results_file.read_text())
    if {k: earlier.get(k) for k in settings} != settings:
        log.warning("%s holds a run with other settings; starting afresh", results_file)
        return []
    return earlier.get("rows", [])


def row_requested(row: Mapping[str, Any]) -> list[int]:
    """The request of a results row (``requested``; rows written before the rename call it ``classes``)."""
    return list(row["requested"] if "requested" in row else row["classes"])


def run_bench(suite: str, *, data_dir: str | None = None, requests: Sequence[Sequence[int]] | None = None,
              retain_budget: int | float | None = None, methods: Sequence[str] = ("anti_memory",),
              references: dict[tuple[int, ...], nn.Module] | None = None, seed: int = 0,
              audit: bool | str = False, overrides: dict | None = None, progress: bool = True,
              results_file: str | Path | None = None, resume: bool = False,
              generator: str | Path | None = None, training_log: str | Path | None = None, seeds: int = 1) -> dict:
    """Run every request with every method; with ``audit`` also the MIA/probe/rebound/relearn columns.

    ``audit``: False, ``"light"`` (MIA and rebound, no probe/relearn) or ``"full"`` (True).
    ``overrides`` (recipe keys, dotted) apply to every method's recipe, e.g. for a frontier sweep.
    ``methods`` may name ``retrain``: its row is the retrain reference (suite-trained or ``references``),
    not a run on the retained budget. ``results_file``: results are written there after every request;
    with ``resume`` the requests already in it (same settings) are not run again. ``generator``: a
    folder from ``zeroshot-unlearn generator fit`` for the methods that synthesise with one (the
    amortised setting: no generator fit inside the requests). ``training_log``: the suite model's training
    log, for the methods that read one (``amnesiac``). ``seeds``: run every method with the unlearning seeds
    ``seed`` .. ``seed + seeds - 1`` (each its own retained subset and run; the original and the retrain reference
    are measured once, with ``seed``); the results get ``seed_summary``, the mean and spread over the seeds.
    """
    if suite not in SUITES:
        raise InvalidRequestError(f"unknown suite {suite!r}; choose one of: {', '.join(SUITES)}")
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise InvalidRequestError(f"seeds must be a whole number >= 1, got {seeds!r}")
    level = "full" if audit is True else (audit or None)
    if level is not None and level not in AUDIT_LEVELS:
        raise InvalidRequestError(f"audit must be one of {AUDIT_LEVELS} (or True/False), got {audit!r}")
    for method in methods:
        if method != "retrain":
            get_method(method)  # unknown names fail before any work
    spec = SUITES[suite]
    model, data = spec.load(data_dir)
    if data.test is None:
        raise InvalidRequestError(f"suite {suite} needs a test split")
    requests = [sorted(r) for r in (requests or spec.requests)]
    budget = retain_budget or spec.default_budget
    model_card = {"architecture": model.pretrained_cfg.get("architecture"),
                  "checkpoint_sha256": model.pretrained_cfg.get("checkpoint_sha256"),
                  "test_accuracy": round(accuracy(model, data.test), 2)}
    settings = _settings(suite, seed, budget, overrides, methods, level, generator, seeds)
    results_file = Path(results_file) if results_file is not None else None
    done = _resumable_rows(results_file, settings) if resume else []
    per_class_full = spec.full_train_per_class(data)
    run = _BenchRun(model=model, data=data, suite=spec, budget=budget, methods=[m for m in methods if m != "retrain"],
                    want_retrain="retrain" in methods, references=references or {}, seed=seed, level=level,
                    overrides=overrides, per_class_full=per_class_full, progress=progress, generator=generator,
                    training_log=training_log)
    rows: list[dict] = []
    for forget in tqdm(requests, desc=f"bench {suite}", disable=not progress):
        anchors: dict | None = None  # the original's and the reference's figures, measured at the first seed
        for one_seed in range(seed, seed + seeds):
            earlier = [r for r in done if row_requested(r) == forget and r.get("seed", seed) == one_seed]
            if earlier:
                rows += earlier
                continue
            # A later seed whose first seed was resumed from the file measures the anchors again (no rows for them).
            anchors = anchors or _request_anchors(replace(run, seed=seed), forget)
            rows += _bench_request(replace(run, seed=one_seed), forget, anchors, with_anchor_rows=one_seed == seed)
            if results_file is not None:
                write_json(results_file, {**settings, "model": model_card, "rows": rows})
    out = {**settings, "model": model_card, "rows": rows}
    if seeds > 1:
        out["seed_summary"] = seed_summary(rows)
    return out


@dataclass(frozen=True)
class _BenchRun:
    """What every request of one bench run shares."""

    model: nn.Module
    data: DataSplits
    suite: Suite
    budget: int | float
    methods: list[str]
    """The methods run on each request (``retrain`` is not one: see ``want_retrain``)."""
    want_retrain: bool
    references: dict[tuple[int, ...], nn.Module]
    seed: int
    level: str | None
    overrides: dict | None
    per_class_full: list[int]
    progress: bool
    generator: str | Path | None
    training_log: str | Path | None = None


@dataclass
class _Measured:
    """One model of a request's rows: the original, the retrain reference or a method's result."""

    name: str
    model: nn.Module
    seconds: float | None
    cpu_seconds: float | None = None
    forget_images_used: int = 0
    check: dict | None = None
    details: dict | None = None
    timings: dict | None = None
    peak_memory_gib: dict | None = None


def _run_method(run: _BenchRun, method: str, forget: list[int], retain) -> _Measured:
    """One method on one request, timed in wall and CPU seconds."""
    data, seed, algorithm = run.data, run.seed, get_method(method)
    needs = algorithm.needs
    # Baselines that read forget images get the retained subset's per-class budget of them.
    forget_data = None
    if "forget" in needs:
        per_class = len(retain) // max(1, len(set(retain.y.tolist())))
        others = sorted(set(data.train.y.tolist()) - set(forget))
        forget_data = retained_subset(data.train, others, per_class * len(forget), seed=seed)
    start, start_cpu = time.perf_counter(), time.process_time()
    # strict=False: a run that fails its self-check is a row (with the check's figure), not a crash.
    result = forget_classes(run.model, forget, retain=retain, method=method, overrides=run.overrides, seed=seed,
                            progress=run.progress, forget_data=forget_data, strict=False,
                            generator=run.generator if algorithm.uses_generator else None,
                            training_log=run.training_log if "training_log" in needs else None)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    return _Measured(method, result.model, seconds, cpu_seconds, result.forget_images_used,
                     result.self_check.as_dict() if result.self_check is not None else None,
                     result.history[-1].get("method_details"), {k: round(v, 2) for k, v in result.timings.items()},
                     peak_memory())


def _retained(run: _BenchRun, forget: list[int]):
    pool = run.data.train if run.suite.retain_from is None else run.data.train.of_classes(run.suite.retain_from)
    return retained_subset(pool, forget, run.budget, seed=run.seed, num_classes=len(run.per_class_full))


@dataclass
class _Anchors:
    """What every seed of one request is compared with: the original's columns and the retrain reference."""

    originals: dict
    logits: torch.Tensor | None
    """The original's test logits, where the suite has per-class columns (their shown/unshown split depends on
    each seed's retained subset)."""
    reference: nn.Module | None
    retrain_seconds: float | None
    reference_metrics: dict | None


def _request_anchors(run: _BenchRun, forget: list[int]) -> _Anchors:
    """The original's columns, the retrain reference and, with an audit level, its audit row (with ``run.seed``)."""
    model, data = run.model, run.data
    logits = None
    if run.suite.per_class_columns:  # one pass over the test split serves both
        logits = data_logits(model, data.test)
        originals = original_columns(model, data.test, forget, logits=logits)
        originals["mia_forget_auc_per_class_original"] = mia_per_class(model, data, forget, run.seed)
    else:
        originals = original_columns(model, data.test, forget)
    reference = run.references.get(tuple(forget))
    retrain_seconds = None
    if reference is None and run.suite.retrain is not None:
        reference, retrain_seconds = run.suite.retrain(data, forget)
    reference_metrics = None
    if run.level and reference is not None:
        reference_metrics = model_metrics(reference, forget, data.train, data.test, _retained(run, forget),
                                          originals["df_original"], seed=run.seed, level=run.level).row
    return _Anchors(originals, logits, reference, retrain_seconds, reference_metrics)


def _bench_request(run: _BenchRun, forget: list[int], anchors: _Anchors, *, with_anchor_rows: bool = True
                   ) -> list[dict]:
    """The rows of one request at ``run.seed``: with ``with_anchor_rows`` the original's and the retrain
    reference's (audited) first, then one per method."""
    model, data, level = run.model, run.data, run.level
    retain = _retained(run, forget)
    # Timed again for every request, so a machine whose load changes during a long run still
    # divides each call by an epoch timed under the same conditions.
    batch, steps = run.suite.epoch_probe
    wall_per_image, cpu_per_image = training_step_seconds(model, tuple(model.pretrained_cfg["input_size"]),
                                                          batch_size=batch, steps=steps)
    originals, reference, retrain_seconds = dict(anchors.originals), anchors.reference, anchors.retrain_seconds
    if anchors.logits is not None:
        originals.update(split_columns(anchors.logits, data.test, forget, retain, masked=True, suffix="_original"))
    df_ref, dr_ref = forget_retain_accuracy(reference, data.test, forget) if reference is not None else (None, None)
    retained_full = sum(run.per_class_full[c] for c in retained_classes(len(run.per_class_full), forget))
    epochs = (wall_per_image * retained_full, cpu_per_image * retained_full)
    common = {"requested": forget, "seed": run.seed,
              **{key: value if value is None or isinstance(value, dict) else round(value, 2)
                 for key, value in originals.items()},
              "df_retrain": None if df_ref is None else round(df_ref, 2),
              "dr_retrain": None if dr_ref is None else round(dr_ref, 2),
              "epoch_seconds": round(epochs[0], 2), "retained_images": len(retain),
              "retrain_time_s": None if retrain_seconds is None else round(retrain_seconds, 2)}
    reference_metrics = anchors.reference_metrics
    measured: list[_Measured] = []
    if level and with_anchor_rows:  # the original as a row of its own, so every column has its anchors
        measured.append(_Measured("original", model, 0.0))
    if reference is not None and (level or run.want_retrain):
        if with_anchor_rows:
            measured.append(_Measured("retrain", reference, retrain_seconds))
    elif run.want_retrain and with_anchor_rows:
        log.warning("no retrain reference for %s: no retrain row (give --reference CLASSES:PATH)", forget)
    measured += [_run_method(run, method, forget, retain) for method in run.methods]
    return [_row(run, one, forget, retain, common, epochs, originals["df_original"], reference_metrics)
            for one in measured]


def _row(run: _BenchRun, one: _Measured, forget: list[int], retain, common: dict, epochs: tuple[float, float],
         df_original: float, reference_metrics: dict | None) -> dict:
    """The results row of one measured model: Df, Dr, time and, with an audit level, the audit columns."""
    audited = None
    # With the per-class columns one pass over the test split gives Df, Dr and the split columns.
    logits = data_logits(one.model, run.data.test) if run.suite.per_class_columns else None
    if run.level:  # the audit row already holds Df and Dr on the test split
        audited = (reference_metrics if one.name == "retrain" else
                   model_metrics(one.model, forget, run.data.train, run.data.test, retain, df_original, seed=run.seed,
                                 level=run.level).row)
        df, dr = audited["df"], audited["dr"]
    elif logits is not None:
        df, dr = logits_df_dr(logits, run.data.test.y, forget)
    else:
        df, dr = forget_retain_accuracy(one.model, run.data.test, forget)
    extra = {}
    if logits is not None:
        extra = {k: _round(v) for k, v in split_columns(logits, run.data.test, forget, retain).items()}
        extra["mia_forget_auc_per_class"] = mia_per_class(one.model, run.data, forget, run.seed)
        extra["retained_classes_shown"] = len(set(retain.y.tolist()))
    row = {"method": one.name, "data_used": data_used(one.name), **common, "df": round(df, 2), "dr": round(dr, 2),
           "time_s": None if one.seconds is None else round(one.seconds, 2),
           "epoch_equivalents": None if one.seconds is None else round(one.seconds / epochs[0], 4),
           "epoch_equivalents_cpu": None if one.cpu_seconds is None else round(one.cpu_seconds / epochs[1], 4),
           "forget_images_used": one.forget_images_used,
           "self_check_figure": (one.check or {}).get("figure"), "self_check_passed": (one.check or {}).get("passed"),
           "method_details": one.details, "timings": one.timings, **extra}
    if one.peak_memory_gib is not None:
        row["peak_memory_gib"] = one.peak_memory_gib
    row.update({key: None for key in AUDIT_COLUMNS})
    if audited is not None:
        row.update({key: _round(audited[key]) for key in AUDIT_COLUMNS if key != "ain"})
        row["intervals"] = {key: [_round(low), _round(high)] for key, (low, high) in
                            ((k, v) for k, v in audited["intervals"].items() if v is not None)}
        row["relearn_runs"] = audited.get("relearn_runs")
        row["probe_df_stages"] = audited.get("probe_df_stages")
        if reference_metrics is not None and audited["relearn_steps"] is not None:
            ain = relearn_ratio(audited["relearn_steps"], reference_metrics["relearn_steps"])
            row["ain"] = None if ain is None else round(ain, 3)
            row["probe_df_retrain"] = round(reference_metrics["probe_df"], 2)
            row["relearn_steps_retrain"] = reference_metrics["relearn_steps"]
    log.info("%s %s: Df %.2f Dr %.2f (orig %.2f/%.2f)", one.name, forget, df, dr, common["df_original"],
             common["dr_original"])
    return row


def _round(value):
    return round(value, 4) if isinstance(value, float) else value


def _mean(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def summarise(rows: list[dict]) -> dict[str, dict]:
    """Per method over its requests: Df mean/max, ΔDr (vs original and vs ceiling) mean/worst, the audit
    columns' means where measured, and epoch-equivalents."""
    out: dict[str, dict] = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        deltas = [r["dr"] - r["dr_original"] for r in mine]
        to_ceiling = [r["dr"] - r["dr_original_masked"] for r in mine]
        times = [r["epoch_equivalents"] for r in mine if r["epoch_equivalents"] is not None]
        cpu_times = [r.get("epoch_equivalents_cpu") for r in mine]
        rebounds = [r.get("rebound_df") for r in mine if r.get("rebound_df") is not None]
        out[method] = {
            "requests": len(mine), "data_used": mine[0].get("data_used", ""),
            "forget_images_mean": statistics.fmean(r["forget_images_used"] for r in mine),
            "df_mean": statistics.fmean(r["df"] for r in mine), "df_max": max(r["df"] for r in mine),
            "ddr_mean": statistics.fmean(deltas), "ddr_worst": min(deltas),
            "ddr_ceiling_mean": statistics.fmean(to_ceiling), "ddr_ceiling_worst": min(to_ceiling),
            "mia_auc_mean": _mean([r.get("mia_forget_auc") for r in mine]),
            "rebound_mean": statistics.fmean(rebounds) if rebounds else None,
            "rebound_max": max(rebounds) if rebounds else None,
            "probe_df_mean": _mean([r.get("probe_df") for r in mine]),
            "relearn_mean": _mean([r.get("relearn_steps") for r in mine]),
            "epoch_eq_mean": statistics.fmean(times) if times else None,
            "epoch_eq_max": max(times) if times else None,
            "epoch_eq_cpu_mean": _mean(cpu_times),
        }
    return out


SEED_COLUMNS = ("df", "dr", "mia_forget_auc", "qmia_auc", "qmia_tpr1", "probe_df", "rebound_df", "relearn_steps",
                "time_s", "epoch_equivalents_cpu")
"""The columns ``seed_summary`` gives a mean and spread over the unlearning seeds."""


def seed_summary(rows: list[dict]) -> list[dict]:
    """Per method and request measured at more than one seed: each of ``SEED_COLUMNS``' mean, standard deviation
    (n - 1) and range over the seeds, and the seeds."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["method"], tuple(row_requested(row))), []).append(row)
    out = []
    for (method, requested), mine in groups.items():
        if len(mine) < 2:
            continue
        entry: dict = {"method": method, "requested": list(requested), "seeds": [r.get("seed") for r in mine]}
        for key in SEED_COLUMNS:
            values = [r[key] for r in mine if r.get(key) is not None]
            if len(values) == len(mine):
                entry[key] = {"mean": round(statistics.fmean(values), 4), "sd": round(statistics.stdev(values), 4),
                              "min": min(values), "max": max(values)}
        out.append(entry)
    return out


def seed_table(results: dict) -> str:
    """Mean ± standard deviation [min, max] over the unlearning seeds, per method and request."""
    summary = results.get("seed_summary") or seed_summary(results["rows"])
    if not summary:
        return ""
    keys = [k for k in SEED_COLUMNS if any(k in entry for entry in summary)]
    lines = ["| method | classes | seeds | " + " | ".join(keys) + " |", "| --- | --- | --- | " + "--- | " * len(keys)]
    for entry in summary:
        cells = []
        for key in keys:
            s = entry.get(key)
            digits = 3 if "mia" in key or "tpr" in key else 1 if key in ("relearn_steps", "time_s") else 2
            cells.append("–" if s is None else f"{s['mean']:.{digits}f} ± {s['sd']:.{digits}f} "
                                               f"[{_fmt(s['min'], digits)}, {_fmt(s['max'], digits)}]")
        lines.append(f"| {entry['method']} | {{{','.join(map(str, row_requested(entry)))}}} | "
                     f"{','.join(map(str, entry['seeds']))} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary_table(results: dict) -> str:
    """The one-row-per-method table (means over the run's requests)."""
    lines = ["| method | data used | requests | Df mean | Df max | ΔDr mean | ΔDr worst | ΔDr-ceiling mean | "
             "MIA-forget AUC mean | rebound Df mean (max) | probe-Df mean | relearn mean | epoch-eq. mean | "
             "epoch-eq. (CPU time) mean |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for method, s in summarise(results["rows"]).items():
        rebound = "–" if s["rebound_mean"] is None else f"{s['rebound_mean']:.2f} ({s['rebound_max']:.2f})"
        lines.append(f"| {method} | {s['data_used']} | {s['requests']} | {s['df_mean']:.2f} | {s['df_max']:.2f} | "
                     f"{s['ddr_mean']:+.2f} | {s['ddr_worst']:+.2f} | {s['ddr_ceiling_mean']:+.2f} | "
                     f"{_fmt(s['mia_auc_mean'], 3)} | {rebound} | {_fmt(s['probe_df_mean'])} | "
                     f"{_fmt(s['relearn_mean'], 1)} | {_fmt(s['epoch_eq_mean'], 3)} | "
                     f"{_fmt(s['epoch_eq_cpu_mean'], 3)} |")
    return "\n".join(lines) + "\n"


def _fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_table(results: dict) -> str:
    rows = results["rows"]
    settings = ", ".join(f"`{k}={v}`" for k, v in (results.get("overrides") or {}).items())
    card = results.get("model") or {}
    about = (f"Model `{card.get('architecture')}`, test accuracy {card.get('test_accuracy')}%, checkpoint sha256 "
             f"`{(card.get('checkpoint_sha256') or '?')[:12]}`.") if card else ""
    over_seeds = seed_table(results)
    lines = [f"### Suite `{results['suite']}` (retained budget {results['retain_budget']}, seed {results['seed']}"
             f"{'; overrides ' + settings if settings else ''})", "", about, "", "Means over the requests:", "",
             summary_table(results), *(["Over the unlearning seeds (mean ± standard deviation [min, max]); the "
                                        "original and the retrain reference are measured once, at the first seed:",
                                        "", over_seeds] if over_seeds else []),
             "Per request:", "",
             "| method | classes | seed | Df | Dr | Df orig. | Dr orig. | Dr ceiling | Dr retrain | ΔDr | ΔDr ceiling | "
             "epoch-eq. | epoch-eq. (CPU) | retained imgs | forget imgs | self-check |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['method']} | {{{','.join(map(str, row_requested(r)))}}} | {r.get('seed', results['seed'])} | "
                     f"{_fmt(r['df'])} | {_fmt(r['dr'])} | "
                     f"{_fmt(r['df_original'])} | {_fmt(r['dr_original'])} | {_fmt(r['dr_original_masked'])} | "
                     f"{_fmt(r['dr_retrain'])} | {r['dr'] - r['dr_original']:+.2f} | {r['dr'] - r['dr_original_masked']:+.2f} | "
                     f"{_fmt(r['epoch_equivalents'], 3)} | {_fmt(r.get('epoch_equivalents_cpu'), 3)} | "
                     f"{r['retained_images']} | {r['forget_images_used']} | {_check_cell(r)} |")
    if any(r.get("mia_forget_auc") is not None for r in rows):
        lines += ["", "Audit columns; in brackets, 95% bootstrap intervals over the images measured.", "",
                  "| method | classes | MIA-forget AUC | TPR@1% | per-example MIA AUC | TPR@1% | TPR@0.1% | MIA-SSD | "
                  "probe-Df | probe-Df retrain | rebound Df | relearn steps | relearn retrain | AIN |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in rows:
            lines.append(f"| {r['method']} | {{{','.join(map(str, row_requested(r)))}}} | "
                         f"{_with_interval(r, 'mia_forget_auc')} | {_fmt(r['mia_forget_tpr1'], 3)} | "
                         f"{_with_interval(r, 'qmia_auc')} | {_with_interval(r, 'qmia_tpr1')} | "
                         f"{_fmt(r.get('qmia_tpr01'), 3)} | {_fmt(r['mia_ssd'])} | {_with_interval(r, 'probe_df', 2)} | "
                         f"{_fmt(r.get('probe_df_retrain'))} | {_with_interval(r, 'rebound_df', 2)} | {_fmt(r['relearn_steps'])} | "
                         f"{_fmt(r.get('relearn_steps_retrain'))} | {_fmt(r['ain'])} |")
    return "\n".join(lines) + "\n"


def _with_interval(row: dict, key: str, digits: int = 3) -> str:
    """A figure and, where the row has one, its 95% interval: ``0.577 [0.541, 0.612]``."""
    interval = (row.get("intervals") or {}).get(key)
    text = _fmt(row.get(key), digits)
    return text if interval is None else f"{text} [{_fmt(interval[0], digits)}, {_fmt(interval[1], digits)}]"


def _check_cell(row: dict) -> str:
    """The self-check as a cell: the new model's forget rate on the original's impressions, and the verdict."""
    if row.get("self_check_figure") is None:
        return "–"
    rate = row.get("self_check_figure")
    if row.get("self_check_passed") is None:
        return "inconclusive"
    return f"{'pass' if row['self_check_passed'] else 'FAIL'} ({_fmt(rate, 1)}%)"


def merge_results(results: Sequence[dict]) -> dict:
    """Rows of several runs of one suite as one result (for tables over runs split by method or request).

    A (method, request) pair measured twice keeps the later run's row."""
    if not results:
        raise InvalidRequestError("nothing to merge")
    suites = {r["suite"] for r in results}
    if len(suites) > 1:
        raise InvalidRequestError(f"cannot merge results of different suites: {', '.join(sorted(suites))}")
    rows: dict[tuple, dict] = {}
    for result in results:
        for row in result["rows"]:
            rows[(row["method"], tuple(row_requested(row)), row.get("seed", result.get("seed")))] = row
    first = results[0]
    return {**first, "overrides": first.get("overrides", {}), "rows": list(rows.values()),
            "merged_from": len(results)}


def save_results(results: dict, out: str | Path, markdown: str | Path | None = None) -> None:
    write_json(out, results)
    write_text(markdown or Path(out).with_suffix(".md"), markdown_table(results))


__all__ = ["run_bench", "save_results", "merge_results", "markdown_table", "summary_table", "summarise", "data_used", "parse_requests",
           "PROTOCOL_REQUESTS", "CIFAR100_REQUESTS", "CIFAR100_SUPERCLASSES", "SUITES"]
