import copy
import json

import numpy as np
import pytest
import torch

from zeroshot_unlearn import audit, forget_classes
from zeroshot_unlearn.errors import InvalidRequestError
from zeroshot_unlearn.audit.report import AuditReport
from zeroshot_unlearn.audit.metrics import mia_forget, model_outputs, relearn_steps, rebound_df, tpr_at_fpr
from zeroshot_unlearn.harness.specs import DIGITS_TRAIN
from zeroshot_unlearn.methods import LogitMask
from zeroshot_unlearn.evaluation import forget_retain_accuracy
from zeroshot_unlearn.harness.training import retrain_reference


@pytest.fixture(scope="session")
def digits_reference(digits):
    return retrain_reference("digits_cnn", digits.train, [3, 7], DIGITS_TRAIN, progress=False)[0]


def test_identical_distributions_give_auc_near_half(digits_model, digits):
    # A random split: MNIST's test set is ordered (its first half is easier), so an index split is not i.i.d.
    data = digits.test.of_classes([3, 7])
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    half = len(data) // 2
    a, b = data.subset(order[:half]), data.subset(order[half:2 * half])
    result = mia_forget(model_outputs(digits_model, a), model_outputs(digits_model, b))
    assert abs(result.auc - 0.5) < 0.1


def test_mia_separates_an_overfit_model_from_one_that_never_saw_the_members(digits):
    """Known answer: a model memorises a small member set (AUC well above 0.5); a model trained on
    disjoint images of the same classes cannot tell those members from non-members (AUC ~ 0.5)."""
    from zeroshot_unlearn.harness.specs import TrainConfig
    from zeroshot_unlearn.harness.training import train_classifier
    from zeroshot_unlearn.zoo import build_model

    rows = torch.randperm(len(digits.train), generator=torch.Generator().manual_seed(0))
    members, other = digits.train.subset(rows[:600]), digits.train.subset(rows[600:1200])
    nonmembers = digits.test
    overfit_cfg = TrainConfig(epochs=40, lr=0.05, crop_padding=0)
    torch.manual_seed(0)
    memoriser = train_classifier(build_model("digits_cnn"), members, overfit_cfg, progress=False)
    torch.manual_seed(0)
    outsider = train_classifier(build_model("digits_cnn"), other, overfit_cfg, progress=False)
    seen = mia_forget(model_outputs(memoriser, members), model_outputs(memoriser, nonmembers))
    unseen = mia_forget(model_outputs(outsider, members), model_outputs(outsider, nonmembers))
    assert seen.auc > 0.6 and abs(unseen.auc - 0.5) < 0.06
    assert seen.auc > unseen.auc + 0.1


def test_tpr_at_low_fpr():
    fpr, tpr = np.array([0.0, 0.005, 0.02, 1.0]), np.array([0.0, 0.3, 0.6, 1.0])
    assert tpr_at_fpr(fpr, tpr) == 0.3


def test_logit_mask_hides_but_does_not_forget(digits_model, digits, digits_retain):
    masked = LogitMask(digits_model, [3, 7])
    assert forget_retain_accuracy(masked, digits.test, [3, 7])[0] == 0.0
    # Rebound and relearn fine-tune the weights under the mask, as an attacker would: the classes come back at once.
    assert rebound_df(masked, digits_retain, digits.test, [3, 7]) > 90
    steps, _ = relearn_steps(masked, digits.train.of_classes([3, 7]), digits.test, [3, 7], 0.5 * 99.0)
    assert steps <= 10


def test_unlearned_is_harder_to_relearn_than_original(digits_model, digits, digits_retain, digits_reference):
    result = forget_classes(digits_model, [3, 7], retain=digits_retain, progress=False)
    target = 0.5 * forget_retain_accuracy(digits_model, digits.test, [3, 7])[0]
    forget_train = digits.train.of_classes([3, 7])
    original_steps, _ = relearn_steps(digits_model, forget_train, digits.test, [3, 7], target)
    unlearned_steps, _ = relearn_steps(result.model, forget_train, digits.test, [3, 7], target)
    retrain_steps, _ = relearn_steps(digits_reference, forget_train, digits.test, [3, 7], target)
    assert original_steps <= 5 < retrain_steps
    assert unlearned_steps > original_steps


def test_audit_report_files(tmp_path, digits_model, digits, digits_retain, digits_reference):
    result = forget_classes(digits_model, [3, 7], retain=digits_retain, progress=False)
    other = forget_classes(digits_model, [3, 7], retain=digits_retain, method="masked_kd", progress=False)
    with pytest.raises(InvalidRequestError, match="taken by the audit's own models"):
        audit(digits_model, result.model, forget=[3, 7], train=digits.train, test=digits.test,
              retain=digits_retain, compare={"retrain": other.model}, progress=False)
    report = audit(digits_model, result.model, forget=[3, 7], train=digits.train, test=digits.test,
                   retain=digits_retain, reference=digits_reference, generator=result.generator,
                   recipe=result.recipe, progress=False, compare={"unlearned (masked_kd)": other.model})
    m = report.metrics
    assert report.model_names() == ["original", "unlearned", "unlearned (masked_kd)", "retrain"]
    compared = m["unlearned (masked_kd)"]  # measured like the unlearned model (masked_kd: Df ~1.5 here)
    assert compared["df"] < m["original"]["df"] - 50 and compared["probe_df"] is not None
    assert all(0 <= m[n]["mia_forget_auc"] <= 1 for n in ("original", "unlearned", "retrain"))
    assert m["retrain"]["df"] == 0 and m["unlearned"]["df"] <= 1
    assert m["original"]["relearn_steps"] < m["retrain"]["relearn_steps"]
    assert m["retrain"]["ain"] == 1.0
    report.save(tmp_path / "audit")
    data = json.loads((tmp_path / "audit" / "report.json").read_text())
    assert data["meta"]["sha256"]["original"] != data["meta"]["sha256"]["unlearned"]
    assert set(data["metrics"]["unlearned"]) >= {"df", "dr", "df_train", "mia_forget_auc", "mia_forget_tpr1",
                                                 "mia_ssd", "probe_df", "rebound_df", "relearn_steps", "ain"}
    # the Dr / probe-Df plane: every model measured, the unlearned one labelled with its depth
    plane = {p["model"]: (p["dr"], p["probe_df"]) for p in data["dr_probe_plane"]}
    assert set(plane) == {"original", "unlearned (depth=output)", "unlearned (masked_kd)", "retrain"}
    assert plane["retrain"] == (m["retrain"]["dr"], m["retrain"]["probe_df"])
    page = (tmp_path / "audit" / "report.html").read_text()
    assert "<th>unlearned (masked_kd)</th>" in page
    # bars, ROC, plane, anti-memories, 3 inversion grids (the compared model is measured, not drawn)
    assert page.count("data:image/png;base64,") == 7
    assert "Where the unlearned model sits" in page
    # the run's own check, beside the Df the audit measured
    check = data["self_check"]
    assert check["source"] == "recorded by the unlearning run" and check["test_df"] == m["unlearned"]["df"]
    assert check["figure"] == result.self_check.figure and check["agree"] is True
    assert "they agree: both say forgotten" in check["summary"]
    assert "<h2>Self-check</h2>" in page and "they agree" in page


def test_audit_recomputes_the_check_of_a_model_without_one_and_says_when_it_disagrees(digits_model, digits):
    from zeroshot_unlearn.audit import self_check_beside_df

    df_original = forget_retain_accuracy(digits_model, digits.test, [3, 7])[0]
    # The untouched original records no check: the audit runs it, and both verdicts say "not forgotten".
    check = self_check_beside_df(digits_model, digits_model, [3, 7], df_original)
    assert check["source"].startswith("computed by the audit") and check["figure"] > 90
    assert check["figure_passed"] is False and check["agree"] is True
    # A (fabricated) record that claims forgetting on a model whose measured Df is high: DISAGREE.
    liar = copy.deepcopy(digits_model)
    liar.unlearning_history = [{"classes": [3, 7], "self_check": {"figure": 0.0, "original_figure": 99.0,
                                                                   "max_figure": 5.0, "max_test_df": 2.5}}]
    check = self_check_beside_df(digits_model, liar, [3, 7], df_original)
    assert check["source"] == "recorded by the unlearning run" and check["agree"] is False
    assert "DISAGREE" in check["summary"]
    report = AuditReport(metrics={}, per_class={}, roc={}, self_check=check)
    assert "they agree</th><td class='text'>NO" in report._self_check_section()
    assert AuditReport(metrics={}, per_class={}, roc={}).to_json()["self_check"] is None


@pytest.mark.slow
def test_report_renders_in_a_real_browser(tmp_path, digits_model, digits, digits_retain):
    """Chromium loads report.html offline and decodes every inlined image."""
    import re
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no Chromium on this machine")
    result = forget_classes(digits_model, [3, 7], retain=digits_retain, progress=False)
    report = audit(digits_model, result.model, forget=[3, 7], train=digits.train, test=digits.test,
                   retain=digits_retain, generator=result.generator, progress=False)
    page = report.save(tmp_path / "audit") / "report.html"
    probe = tmp_path / "probe.html"
    counter = ("<script>addEventListener('load', () => document.body.dataset.decoded = "
               "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length)</script>")
    probe.write_text(page.read_text().replace("</body>", counter + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([browser, *flags, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    images = page.read_text().count("data:image/png;base64,")
    decoded = re.search(r'data-decoded="(\d+)"', dom)
    assert decoded is not None, "the page did not finish loading in Chromium"
    assert int(decoded.group(1)) == images >= 5  # bars, ROC, anti-memories, 2 inversion grids
    subprocess.run([browser, *flags, "--window-size=1100,2600", f"--screenshot={tmp_path / 'report.png'}",
                    page.as_uri()], capture_output=True, timeout=120)
    assert (tmp_path / "report.png").stat().st_size > 10_000
