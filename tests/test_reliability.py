"""Every bad input of the "Refused inputs" table (docs/refused-inputs.md), refused before any work with its own
error and no side effect; nothing lost on failure; outputs appear complete or not at all."""

import copy
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

from conftest import FAST, state_equal
from zeroshot_unlearn import (DataError, DivergenceError, InvalidRequestError, ModelError, OutputError, RecipeError,
                              UnlearnError, forget_classes, plan_request)
from zeroshot_unlearn.data import ImageTensorDataset

REFUSED_INPUTS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "refused-inputs.md"


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit-identical, NaN included."""
    return a.dtype == b.dtype and a.shape == b.shape and bool((a.view(torch.uint8) == b.view(torch.uint8)).all()) \
        if a.numel() else a.shape == b.shape


def _with(retain, x=None, y=None):
    return ImageTensorDataset(retain.x if x is None else x, retain.y if y is None else y)


def _leaked(retain, digits):
    seven = digits.train.of_classes([7])
    return _with(retain, torch.cat([retain.x, seven.x[:1]]), torch.cat([retain.y, seven.y[:1]]))


def _nan(retain):
    x = retain.x.clone()
    x[0, 0, 0, 0] = float("nan")
    return _with(retain, x)


def _five_class_model(model):
    small = copy.deepcopy(model)
    small.fc = nn.Linear(small.fc.in_features, 5)
    small.num_classes = 5
    small.pretrained_cfg = {**model.pretrained_cfg, "num_classes": 5}
    return small


def _declared_mismatch(model):
    odd = copy.deepcopy(model)
    odd.num_classes = 12
    return odd


def _spread(model):
    odd = copy.deepcopy(model)
    odd.fc.to("meta")
    return odd


class _NoHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        return self.conv(x).mean((2, 3))


# (case id, how to build the call's keyword arguments from (model, retain, digits), error type, message)
# The ids are the rows of the table in docs/refused-inputs.md.
CASES = [
    ("classes-out-of-range", lambda m, r, d: dict(classes=[10]), InvalidRequestError, "out of range"),
    ("classes-negative", lambda m, r, d: dict(classes=[-1]), InvalidRequestError, "out of range"),
    ("classes-duplicate", lambda m, r, d: dict(classes=[3, 3]), InvalidRequestError, "more than once"),
    ("classes-empty", lambda m, r, d: dict(classes=[]), InvalidRequestError, "empty"),
    ("classes-all", lambda m, r, d: dict(classes=list(range(10))), InvalidRequestError, "all 10 classes"),
    ("classes-not-integers", lambda m, r, d: dict(classes=[3.5, "7"]), InvalidRequestError, "integers"),
    ("classes-not-a-list", lambda m, r, d: dict(classes="3,7"), InvalidRequestError, "list of class ids"),
    ("classes-not-in-head", lambda m, r, d: dict(model=_five_class_model(m), classes=[7],
                                                  retain=r.of_classes([0, 1, 2])),
     InvalidRequestError, "head has 5 classes"),
    ("retain-missing", lambda m, r, d: dict(retain=None, method="masked_kd"), InvalidRequestError,
     "needs retained data"),
    ("retain-empty", lambda m, r, d: dict(retain=r.subset(torch.arange(0))), DataError, "empty"),
    ("retain-not-a-dataset", lambda m, r, d: dict(retain=42), DataError, "map-style Dataset"),
    ("retain-has-forget-class", lambda m, r, d: dict(retain=_leaked(r, d)), DataError,
     r"1 samples of forget class\(es\) \[7\]"),
    ("retain-wrong-channels", lambda m, r, d: dict(retain=_with(r, r.x.repeat(1, 3, 1, 1))), DataError,
     r"shape \(3, 28, 28\).*expects \(1, 28, 28\)"),
    ("retain-wrong-size", lambda m, r, d: dict(retain=_with(r, r.x[:, :, :20, :20])), DataError,
     r"shape \(1, 20, 20\)"),
    ("retain-uint8", lambda m, r, d: dict(retain=TensorDataset((r.x * 80).clamp(0, 255).to(torch.uint8), r.y)),
     DataError, "raw uint8"),
    ("retain-unnormalised-floats", lambda m, r, d: dict(retain=_with(r, r.x * 0 + 255.0)), DataError,
     "0-255 pixels"),
    ("retain-nan", lambda m, r, d: dict(retain=_nan(r)), DataError, "NaN"),
    ("retain-float-labels", lambda m, r, d: dict(retain=TensorDataset(r.x, r.y.float())), DataError,
     "labels must be integers"),
    ("retain-labels-out-of-range", lambda m, r, d: dict(retain=_with(r, y=torch.where(r.y == 9, 12, r.y))),
     DataError, r"labels must be in 0..9"),
    ("retain-too-few-per-class", lambda m, r, d: dict(overrides={"min_per_class": 100}), DataError,
     "fewer than 100 samples"),
    ("model-not-a-module", lambda m, r, d: dict(model=m.state_dict()), ModelError, "torch.nn.Module"),
    ("model-half-precision", lambda m, r, d: dict(model=copy.deepcopy(m).half()), ModelError, "float16"),
    ("model-unusable-device", lambda m, r, d: dict(model=copy.deepcopy(m).to("meta")), ModelError,
     "on meta"),
    ("model-spread-over-devices", lambda m, r, d: dict(model=_spread(m)), ModelError,
     "spread over devices cpu, meta"),
    ("device-cuda-missing", lambda m, r, d: dict(device="cuda"), InvalidRequestError,
     "asked for CUDA, but torch sees no CUDA device"),
    ("device-unknown", lambda m, r, d: dict(device="tpu9"), InvalidRequestError, "not a device name"),
    ("model-no-classifier-head", lambda m, r, d: dict(model=_NoHead()), ModelError, "no classifier head"),
    ("model-head-size-mismatch", lambda m, r, d: dict(model=_declared_mismatch(m)), ModelError,
     "declares num_classes=12"),
    ("recipe-unknown-key", lambda m, r, d: dict(overrides={"impair.lrr": 0.1}), RecipeError,
     "unknown recipe key 'impair.lrr'. Did you mean 'lr'"),
    ("recipe-wrong-type", lambda m, r, d: dict(overrides={"impair.epochs": "two"}), RecipeError,
     "must be a number"),
    ("recipe-out-of-range", lambda m, r, d: dict(overrides={"impair.lr": -1.0}), RecipeError, "out of range"),
    ("recipe-bad-choice", lambda m, r, d: dict(overrides={"impair.optimizer": "lion"}), RecipeError,
     "choose one of: sgd, adam"),
    ("recipe-unknown-name", lambda m, r, d: dict(recipe="cifar_resnett"), RecipeError,
     "Did you mean 'cifar_resnet'"),
    ("recipe-unknown-generator", lambda m, r, d: dict(overrides={"generator.kind": "gan"}), RecipeError,
     "registered generators: network, noise"),
    ("recipe-synthetic-repair", lambda m, r, d: dict(overrides={"repair.anti_memory_batch": 8}), RecipeError,
     "repair trains on retained data only"),
    ("recipe-scope-names-nothing", lambda m, r, d: dict(overrides={"impair.perturb_scope": ["layer3"],
                                                                   "impair.shrink": 0.5}), RecipeError,
     "perturb_scope entry 'layer3' names no parameter of DigitsCNN; .* fc, features"),
    ("recipe-channels-without-convolutions", lambda m, r, d: dict(overrides={
        "impair.perturb_scope": ["fc"], "impair.shrink": 0.5, "impair.perturb_channels": 0.5}), RecipeError,
     r"perturb_channels < 1 ranks the output channels of convolutions, and impair.perturb_scope \['fc'\] holds none"),
    ("recipe-retained-term-data-free", lambda m, r, d: dict(retain=None, overrides={"impair.span_weight": 1.0}),
     RecipeError, "impair.span_weight compares with retained images, and the data-free mode has none"),
    ("method-unknown", lambda m, r, d: dict(method="anti_memroy"), InvalidRequestError,
     "Did you mean 'anti_memory'.*Registered methods"),
    ("seed-not-integer", lambda m, r, d: dict(seed="0"), InvalidRequestError, "seed must be an integer"),
]


@pytest.mark.parametrize("case, build, error, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_any_work(case, build, error, message, digits_model, digits, digits_retain):
    if case == "device-cuda-missing" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    kwargs = dict(model=copy.deepcopy(digits_model), classes=[3, 7], retain=digits_retain)
    kwargs.update(build(digits_model, digits_retain, digits))
    model = kwargs["model"]
    before = (copy.deepcopy(model) if isinstance(model, nn.Module) and case not in ("model-unusable-device",
                                                                                    "model-spread-over-devices")
              else None)
    retain = kwargs["retain"]
    retain_x = retain.x.clone() if isinstance(retain, ImageTensorDataset) else None
    with pytest.raises(error, match=message):
        forget_classes(kwargs.pop("model"), kwargs.pop("classes"), progress=False, **kwargs)
    if before is not None:
        assert state_equal(model, before)
    if retain_x is not None:
        assert _same(retain.x, retain_x)


def test_readme_lists_every_case():
    text = REFUSED_INPUTS_PAGE.read_text()
    missing = [case for case, *_ in CASES if f"`{case}`" not in text]
    assert not missing, f"docs/refused-inputs.md's table lacks {missing}"
    # ...and the other way round: every row of the table is a case here or is named by another test.
    rows = [case for cell in re.findall(r"^\| (`[^|]+`) \|", text, re.M) for case in re.findall(r"`([^`]+)`", cell)]
    others = "".join(path.read_text() for path in Path(__file__).parent.glob("test_*.py")
                     if path.name != Path(__file__).name)
    untested = [case for case in rows if case not in {c for c, *_ in CASES} and case not in others]
    assert rows and not untested, f"rows of docs/refused-inputs.md that no test names: {untested}"


def test_divergence_rolls_back_and_never_returns_a_broken_model(model_copy, digits_retain):
    before = copy.deepcopy(model_copy)
    exploding = {**FAST, "impair.lr": 10.0, "impair.grad_clip": 0.0, "impair.optimizer": "sgd",
                 "impair.momentum": 0.0, "impair.ce_weight": 1e30}
    with pytest.raises(DivergenceError, match="rolled back"):
        forget_classes(model_copy, [3, 7], retain=digits_retain, overrides=exploding, inplace=True, progress=False)
    assert state_equal(model_copy, before)  # inplace=True too: nothing was written into the caller's model


def test_failure_mid_run_leaves_the_model_bit_identical(model_copy, digits_retain, monkeypatch):
    from zeroshot_unlearn.methods.anti_memory import AntiMemory

    before = copy.deepcopy(model_copy)
    original_run = AntiMemory.run

    def run_then_fail(self, ctx):
        original_run(self, ctx)
        raise KeyboardInterrupt  # Ctrl-C after the student was trained, before the result is handed back

    monkeypatch.setattr(AntiMemory, "run", run_then_fail)
    with pytest.raises(KeyboardInterrupt):
        forget_classes(model_copy, [3, 7], retain=digits_retain, overrides=FAST, inplace=True, progress=False)
    assert state_equal(model_copy, before)


def test_save_is_all_or_nothing(tmp_path, model_copy, digits_retain, monkeypatch):
    import zeroshot_unlearn.result as api

    result = forget_classes(model_copy, [3, 7], retain=digits_retain, overrides=FAST, progress=False)
    real_write_text = api.write_text

    def interrupted(path, text):
        real_write_text(path, text[: len(text) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "write_text", interrupted)  # dies after model.safetensors, half-way into recipe.yaml
    with pytest.raises(KeyboardInterrupt):
        result.save(tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary folder left behind either
    monkeypatch.setattr(api, "write_text", real_write_text)
    result.save(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["generator.safetensors", "model.safetensors",
                                                                     "recipe.yaml"]
    with pytest.raises(OutputError, match="not empty"):
        result.save(tmp_path / "out")
    result.save(tmp_path / "out", overwrite=True)


def test_cli_runtime_failure_exits_1_with_one_line(tmp_path, capsys, monkeypatch):
    from zeroshot_unlearn.cli import main
    from zeroshot_unlearn.methods.anti_memory import AntiMemory

    def diverge(self, ctx):
        raise DivergenceError("impair: the loss became nan at step 3; the model was rolled back")

    monkeypatch.setattr(AntiMemory, "run", diverge)
    code = main(["forget", "--model", "digits_cnn", "--checkpoint", "digits_cnn.safetensors", "--classes", "3",
                 "--retain-data", "digits", "--retain-budget", "300", "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "rolled back" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- property-based

from hypothesis import HealthCheck, event, given, settings, strategies as st  # noqa: E402

class_ids = st.one_of(st.integers(-3, 14), st.floats(-1, 12), st.just(float("nan")), st.text(max_size=2),
                      st.none(), st.booleans())
wild_classes = st.one_of(st.lists(class_ids, max_size=12), st.integers(), st.text(max_size=4), st.none())
valid_classes = st.lists(st.integers(0, 9), min_size=1, max_size=4, unique=True)
recipe_keys = st.sampled_from(["impair.lr", "impair.epochs", "repair.batch_size", "generator.kind", "generator.steps",
                               "impair.anti_memory_target", "bn_policy", "min_per_class", "impair.lrr", "nonsense",
                               "augment.crop_padding", "impair.anti_memory_batch", "repair.anti_memory_batch"])
recipe_values = st.one_of(st.integers(-5, 5000), st.floats(-10, 100), st.just(float("nan")), st.just(float("inf")),
                          st.text(max_size=6), st.booleans(), st.none(), st.lists(st.integers(), max_size=2))
valid_overrides = st.fixed_dictionaries({}, optional={"impair.lr": st.floats(0.001, 0.1),
                                                      "min_per_class": st.integers(1, 6),
                                                      "generator.kind": st.sampled_from(["network", "noise"])})


@st.composite
def requests(draw):
    """(classes, retained data, overrides): each part valid most of the time, broken in one of many ways otherwise."""
    classes = draw(wild_classes if draw(st.integers(0, 3)) == 0 else valid_classes)
    forget = {c for c in classes if isinstance(c, int)} if isinstance(classes, list) else set()
    thin = draw(st.integers(0, 4)) == 0  # sometimes too few per class for the recipe's min_per_class
    counts = [0 if c in forget else draw(st.integers(0 if thin else 6, 8)) for c in range(10)]
    y = torch.tensor([c for c, n in enumerate(counts) for _ in range(n)], dtype=torch.long)
    x = torch.randn(len(y), 1, 28, 28)
    flaw = draw(st.sampled_from(["none"] * 9 + ["dtype", "shape", "range", "nan", "leak", "labels",
                                 "float-labels", "empty", "length"]))
    if flaw == "dtype":
        x = (x * 50 + 100).clamp(0, 255).to(draw(st.sampled_from([torch.uint8, torch.int64, torch.float16])))
    elif flaw == "shape":
        x = torch.randn(len(y), *draw(st.sampled_from([(3, 28, 28), (1, 20, 20), (1, 28, 32)])))
    elif flaw == "range":
        x = x.abs() * 255
    elif flaw == "nan" and len(y):
        x[draw(st.integers(0, len(y) - 1))] = float("nan")
    elif flaw == "leak" and forget and len(y):
        y[draw(st.integers(0, len(y) - 1))] = min(forget) if 0 <= min(forget) < 10 else 0
    elif flaw == "labels" and len(y):
        y[draw(st.integers(0, len(y) - 1))] = draw(st.sampled_from([-1, 10, 99]))
    elif flaw == "float-labels":
        y = y.float()
    elif flaw == "empty":
        x, y = x[:0], y[:0]
    elif flaw == "length" and len(y):
        x = x[1:]
    retain = TensorDataset(x, y) if len(x) == len(y) else (x, y)
    overrides = draw(st.dictionaries(recipe_keys, recipe_values, max_size=3) if draw(st.integers(0, 3)) == 0
                     else valid_overrides)
    event(f"flaw: {flaw}")
    return classes, retain, overrides


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=requests())
def test_validation_accepts_or_raises_an_unlearn_error(digits_model, request):
    classes, retain, overrides = request
    state = {k: v.clone() for k, v in digits_model.state_dict().items()}
    tensors = [t.clone() for t in (retain.tensors if isinstance(retain, TensorDataset) else retain)]
    try:
        plan = plan_request(digits_model, classes, retain=retain, overrides=overrides)
    except UnlearnError as err:
        event(f"refused: {type(err).__name__}")
    else:
        event("accepted")
        assert plan.forget and all(0 <= c < 10 for c in plan.forget)
        assert not torch.isin(plan.retain.y, torch.tensor(plan.forget)).any()
        assert torch.is_floating_point(plan.retain.x) and torch.isfinite(plan.retain.x).all()
        numbers = [v for phase in (plan.recipe.impair, plan.recipe.repair) for v in vars(phase).values()
                   if isinstance(v, float)]
        assert all(math.isfinite(v) for v in numbers)
    assert all(torch.equal(v, state[k]) for k, v in digits_model.state_dict().items())
    after = retain.tensors if isinstance(retain, TensorDataset) else retain
    assert all(_same(a, b) for a, b in zip(after, tensors))
