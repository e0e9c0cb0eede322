import copy
import json

import numpy as np
import pytest
import torch

from zeroshot_unlearn import audit, forget_classes
from zeroshot_unlearn.errors import InvalidRequestError
from zeroshot_unlearn.audit.report import AuditReport
from zeroshot_unlearn.audit.intervals import auc_of, mean_interval, tpr_at, two_sample_interval
from zeroshot_unlearn.audit.metrics import mia_forget, model_outputs, relearn_steps, rebound_df, tpr_at_fpr
from zeroshot_unlearn.audit.per_example import quantile_attack
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

    # The per-example attack on {3, 7}, its regression fitted on the other digits' test images alone (no
    # image or model of 3 or 7): the memoriser's interval lies above chance, the outsider's holds it.
    def per_example(model):
        mem, non = model_outputs(model, members), model_outputs(model, nonmembers)
        attack = quantile_attack(mem.of_classes([3, 7]), non.of_classes([3, 7]), non.of_classes([0, 1, 2, 4, 5, 6, 8, 9]))
        return attack, two_sample_interval(auc_of, attack.member_scores, attack.nonmember_scores)

    (seen, seen_ci), (unseen, unseen_ci) = per_example(memoriser), per_example(outsider)
    assert seen_ci[0] > 0.5 and seen_ci[0] <= seen.auc <= seen_ci[1], (seen.auc, seen_ci)
    assert unseen_ci[0] <= 0.5 <= unseen_ci[1], (unseen.auc, unseen_ci)
    # At the threshold set on the other digits' non-members the outsider calls members and non-members of 3 and 7
    # alike (its false-positive rate there is not 1%: the calibration does not carry over to unseen classes).
    assert abs(unseen.calibrated_tpr - unseen.calibrated_fpr) < 0.1 and seen.calibrated_tpr > seen.calibrated_fpr


def test_tpr_at_low_fpr():
    fpr, tpr = np.array([0.0, 0.005, 0.02, 1.0]), np.array([0.0, 0.3, 0.6, 1.0])
    assert tpr_at_fpr(fpr, tpr) == 0.3


def test_the_interval_arithmetic_agrees_with_sklearn_and_narrows_with_more_images():
    from sklearn.metrics import roc_auc_score, roc_curve

    rng = np.random.default_rng(0)
    members, nonmembers = rng.normal(0.5, 1, 300).round(1), rng.normal(0, 1, 400).round(1)  # rounded: ties
    labels = np.r_[np.ones(300), np.zeros(400)]
    scores = np.r_[members, nonmembers]
    assert auc_of(members, nonmembers) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    fpr, tpr, _ = roc_curve(labels, scores)
    assert tpr_at(members, nonmembers, 0.01) == pytest.approx(tpr_at_fpr(fpr, tpr, 0.01), abs=1e-12)
    low, high = two_sample_interval(auc_of, members, nonmembers)
    assert low < auc_of(members, nonmembers) < high and 0.02 < high - low < 0.15
    few, many = mean_interval(rng.random(50) < 0.3), mean_interval(rng.random(5000) < 0.3)
    assert few[0] < 30 < few[1] and many[0] < 30 < many[1] and many[1] - many[0] < (few[1] - few[0]) / 5
    assert mean_interval(np.array([])) is None


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
    # relearn: the original already reaches the target before any step; each figure is the median of its runs
    assert m["original"]["relearn_steps"] == 0 < m["retrain"]["relearn_steps"]
    assert m["retrain"]["ain"] == 1.0 and m["original"]["ain"] == 0.0
    for name in ("original", "unlearned", "retrain"):
        runs = m[name]["relearn_runs"]
        assert len(runs) == 3 and m[name]["relearn_steps"] == sorted(runs)[1]
        assert m[name]["intervals"]["relearn_steps"] == [min(runs), max(runs)]
    # probes at every stage: the digits CNN's last stage, pooled, is its head input, so the two probes agree
    stages = m["unlearned"]["probe_df_stages"]
    assert list(stages) == ["features.2", "features.6", "features.10"]
    assert stages["features.10"]["value"] == m["unlearned"]["probe_df"]
    # output-depth forgetting leaves the features: probe-Df at the head input not below the original's, no flag
    assert report.stage_flags["unlearned"]["flagged"] is False
    report.save(tmp_path / "audit")
    data = json.loads((tmp_path / "audit" / "report.json").read_text())
    assert data["meta"]["sha256"]["original"] != data["meta"]["sha256"]["unlearned"]
    assert set(data["metrics"]["unlearned"]) >= {"df", "dr", "df_train", "mia_forget_auc", "mia_forget_tpr1",
                                                 "mia_ssd", "probe_df", "rebound_df", "relearn_steps", "ain",
                                                 "qmia_auc", "qmia_tpr1", "qmia_tpr01", "intervals"}
    for name in ("original", "unlearned", "retrain"):  # every interval holds its figure
        row = data["metrics"][name]
        for key, (low, high) in ((k, v) for k, v in row["intervals"].items() if v is not None):
            assert low - 1e-9 <= row[key] <= high + 1e-9, (name, key, row[key], low, high)
        scores = data["per_example_mia"][name]  # one score per forget-class member and non-member
        assert len(scores["members"]) == len(digits.train.of_classes([3, 7]))
        assert len(scores["nonmembers"]) == len(digits.test.of_classes([3, 7])) == row["qmia_nonmembers"]
    # the Dr / probe-Df plane: every model measured, the unlearned one labelled with its depth
    plane = {p["model"]: (p["dr"], p["probe_df"]) for p in data["dr_probe_plane"]}
    assert set(plane) == {"original", "unlearned (depth=output)", "unlearned (masked_kd)", "retrain"}
    assert plane["retrain"] == (m["retrain"]["dr"], m["retrain"]["probe_df"])
    # verdicts: the unlearned model's Df is the retrained model's, not the original's; each verdict names its
    # intervals; judged without a reference, the retrained model reads forgotten and the original not
    judged = {v["column"]: v for v in data["verdicts"]["unlearned"]}
    assert judged["df"]["verdict"] == "forgotten" and judged["df"]["headline"].startswith("Df: like the retrained")
    assert all(v["verdict"] in ("forgotten", "not forgotten", "inconclusive", "inconclusive (between)")
               and "[" in v["headline"] for v in judged.values())
    assert set(data["verdicts"]) == {"unlearned", "unlearned (masked_kd)"}
    calibration = {name: {v["column"]: v["verdict"] for v in rows} for name, rows in data["calibration"].items()}
    assert calibration["retrain"]["df"] == calibration["retrain"]["rebound_df"] == "forgotten"
    assert calibration["original"]["df"] == calibration["original"]["rebound_df"] == "not forgotten"
    assert "probe_df" not in calibration["retrain"]  # nothing to judge it against without a reference
    page = (tmp_path / "audit" / "report.html").read_text()
    assert "<th>unlearned (masked_kd)</th>" in page and "<h2>Verdicts</h2>" in page
    assert "<h2>Probes at every stage</h2>" in page and "<th>head input</th>" in page
    assert [p["stage"] for p in data["probe_stages"]["retrain"]] == [*stages, "head input"]
    # bars, ROC, plane, stages, anti-memories, 3 inversion grids (the compared model is measured, not drawn)
    assert page.count("data:image/png;base64,") == 8
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


def test_a_verdict_is_never_forgotten_when_the_intervals_cannot_tell_the_references_apart():
    from zeroshot_unlearn.audit.verdicts import column_verdict

    def row(value, low, high):
        return {"mia_forget_auc": value, "df": value, "intervals": {"mia_forget_auc": [low, high], "df": [low, high]}}

    original, retrain = row(0.58, 0.55, 0.61), row(0.49, 0.46, 0.52)
    assert column_verdict("mia_forget_auc", row(0.50, 0.47, 0.53), original, retrain)["verdict"] == "forgotten"
    assert column_verdict("mia_forget_auc", row(0.58, 0.56, 0.60), original, retrain)["verdict"] == "not forgotten"
    between = column_verdict("mia_forget_auc", row(0.535, 0.53, 0.54), original, retrain)
    assert between["verdict"] == "inconclusive (between)" and "nearer" in between["headline"]
    close = row(0.53, 0.50, 0.56)  # references that overlap each other: the column cannot judge
    assert column_verdict("mia_forget_auc", row(0.53, 0.51, 0.55), original, close)["verdict"] == "inconclusive"
    headline = column_verdict("mia_forget_auc", row(0.50, 0.47, 0.53), original, retrain)["headline"]
    assert headline == "MIA: like the retrained model (0.500 [0.470, 0.530] vs 0.490 [0.460, 0.520]; original 0.580 [0.550, 0.610])"
    # no reference: Df against the allowance, MIA against chance; straddling either is inconclusive
    assert column_verdict("df", row(0.4, 0.0, 1.2), row(90, 88, 92), None, 2.5)["verdict"] == "forgotten"
    assert column_verdict("df", row(2.0, 0.8, 3.4), row(90, 88, 92), None, 2.5)["verdict"] == "inconclusive"
    assert column_verdict("mia_forget_auc", row(0.49, 0.45, 0.53), original, None)["verdict"] == "forgotten"
    assert column_verdict("mia_forget_auc", row(0.56, 0.52, 0.60), original, None)["verdict"] == "not forgotten"
    assert column_verdict("mia_forget_auc", row(0.52, 0.48, 0.56), row(0.53, 0.49, 0.57), None)["verdict"] == "inconclusive"


def test_the_stage_flag_catches_forgetting_only_at_the_top():
    from zeroshot_unlearn.audit import stage_flag

    def row(stage1, stage2, head):
        return {"probe_df": head[0], "intervals": {"probe_df": head[1]},
                "probe_df_stages": {"layer1": {"value": stage1[0], "interval": stage1[1]},
                                    "layer2": {"value": stage2[0], "interval": stage2[1]}}}

    original = row((60, [55, 65]), (85, [80, 90]), (88, [84, 92]))
    retrain = row((58, [53, 63]), (62, [57, 67]), (64, [59, 69]))
    # forgotten at the head input, but layer2 still reads like the original and unlike the retrained model
    top_only = row((59, [54, 64]), (84, [79, 89]), (40, [35, 45]))
    flag = stage_flag({"original": original, "unlearned": top_only, "retrain": retrain})
    assert flag["flagged"] and flag["lingering_stages"] == ["layer2"] and "layer2" in flag["text"]
    # layer1 reads like both references: no model can be judged there, so it does not raise the flag
    deep = row((59, [54, 64]), (61, [56, 66]), (63, [58, 68]))
    assert stage_flag({"original": original, "unlearned": deep, "retrain": retrain})["flagged"] is False
    # nothing forgotten at the head input: nothing hidden at the top
    assert stage_flag({"original": original, "unlearned": original, "retrain": retrain})["flagged"] is False
    # without a reference, any earlier stage at the original's level raises it, and the text says why that is weak
    alone = stage_flag({"original": original, "unlearned": deep})
    assert alone["flagged"] and alone["lingering_stages"] == ["layer1"] and "no retrain reference" in alone["text"]
    assert stage_flag({"original": {"probe_df": 88.0}, "unlearned": {"probe_df": 10.0}}) is None  # not probed


def test_relearn_verdicts_read_the_direction_of_the_steps():
    from zeroshot_unlearn.audit.verdicts import column_verdict

    def row(steps, low, high):
        return {"relearn_steps": steps, "intervals": {"relearn_steps": [low, high]}}

    original, retrain = row(0, 0, 0), row(5, 5, 5)
    harder = column_verdict("relearn_steps", row(10, 10, 10), original, retrain)
    assert harder["verdict"] == "forgotten" and "harder to relearn" in harder["headline"]
    assert column_verdict("relearn_steps", row(3, 2, 3), original, retrain)["verdict"] == "inconclusive (between)"
    assert column_verdict("relearn_steps", row(0, 0, 1), original, retrain)["verdict"] == "not forgotten"
    assert column_verdict("relearn_steps", row(10, 10, 10), original, None) is None  # no rule without a reference
