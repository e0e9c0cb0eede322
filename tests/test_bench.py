import json

import pytest

from zeroshot_unlearn import InvalidRequestError
from zeroshot_unlearn.harness.bench import (PROTOCOL_REQUESTS, markdown_table, parse_requests, run_bench, save_results,
                                            summary_table)

SCHEMA = {"method", "requested", "df", "dr", "df_original", "dr_original", "dr_retrain", "time_s", "epoch_equivalents",
          "retained_images", "forget_images_used"}


def test_protocol_requests():
    assert len(PROTOCOL_REQUESTS) == 15 and [3, 7] in PROTOCOL_REQUESTS and [0, 1, 2, 3, 4] in PROTOCOL_REQUESTS
    assert parse_requests("3,7;0") == [[3, 7], [0]]
    assert parse_requests("protocol") is None  # each suite's own requests


def test_digits_bench_row_schema_and_files(tmp_path):
    results = run_bench("digits", requests=[[3, 7]], progress=False)
    row = results["rows"][0]
    assert SCHEMA <= set(row)
    assert row["forget_images_used"] == 0 and row["retained_images"] <= 400
    assert row["dr_retrain"] is not None and row["df"] <= 1.0
    assert row["epoch_equivalents"] > 0 and row["epoch_seconds"] > 0 and row["epoch_equivalents_cpu"] > 0
    save_results(results, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["suite"] == "digits"
    assert "| anti_memory | {3,7} |" in (tmp_path / "r.md").read_text()


def test_light_audit_retrain_row_data_used_and_resume(tmp_path, monkeypatch):
    out = tmp_path / "r.json"
    results = run_bench("digits", requests=[[3, 7]], methods=["logit_mask", "retrain"], audit="light",
                        progress=False, results_file=out, seeds=2)
    # two unlearning seeds: the method twice (each seed its own retained subset), the anchors once
    assert [(r["method"], r["seed"]) for r in results["rows"]] == [("original", 0), ("retrain", 0), ("logit_mask", 0),
                                                                  ("logit_mask", 1)]
    first, second = results["rows"][2:]
    assert first["retained_images"] == second["retained_images"] and first["df_original"] == second["df_original"]
    (spread,) = results["seed_summary"]
    assert spread["method"] == "logit_mask" and spread["seeds"] == [0, 1]
    assert spread["df"] == {"mean": 0.0, "sd": 0.0, "min": 0.0, "max": 0.0}
    rebounds = [first["rebound_df"], second["rebound_df"]]
    assert spread["rebound_df"]["min"] == min(rebounds) and spread["rebound_df"]["max"] == max(rebounds)
    rows = {r["method"]: r for r in results["rows"][:3]}
    assert rows["retrain"]["data_used"] == "full train minus forget" and rows["logit_mask"]["data_used"] == "none"
    assert rows["retrain"]["df"] == rows["retrain"]["df_retrain"] < 1.0
    # light: MIA and rebound measured, probe and relearn left out
    assert rows["logit_mask"]["mia_forget_auc"] is not None and rows["logit_mask"]["probe_df"] is None
    assert rows["logit_mask"]["relearn_steps"] is None and rows["logit_mask"]["ain"] is None
    # the output mask hides the classes, and the weights under it give them back after harmless fine-tuning
    assert rows["logit_mask"]["df"] == 0.0 and rows["logit_mask"]["rebound_df"] > 50
    assert json.loads(out.read_text())["rows"] == results["rows"]  # written after the request

    def must_not_run(*args, **kwargs):
        raise AssertionError("a request already in the checkpoint ran again")

    monkeypatch.setattr("zeroshot_unlearn.harness.bench.forget_classes", must_not_run)
    again = run_bench("digits", requests=[[3, 7]], methods=["logit_mask", "retrain"], audit="light",
                      progress=False, results_file=out, resume=True, seeds=2)
    assert again["rows"] == results["rows"]
    summary = summary_table(again)
    assert "| logit_mask | none | 2 | 0.00 |" in summary
    assert "| logit_mask | {3,7} | 0,1 | 0.00 ± 0.00 [0.00, 0.00] |" in markdown_table(again)
    with pytest.raises(InvalidRequestError, match="seeds must be a whole number"):
        run_bench("digits", requests=[[3, 7]], seeds=0, progress=False)


def test_bench_refuses_unknown_methods_and_audit_levels():
    with pytest.raises(InvalidRequestError, match="unknown method 'sgd'"):
        run_bench("digits", requests=[[3]], methods=["sgd"], progress=False)
    with pytest.raises(InvalidRequestError, match="audit must be one of"):
        run_bench("digits", requests=[[3]], audit="deep", progress=False)


def test_merge_results_keeps_one_row_per_method_and_request(tmp_path, capsys):
    from zeroshot_unlearn.harness.bench import merge_results, row_requested
    from zeroshot_unlearn.cli import main

    def row(method, requested, df, key="requested"):
        return {"method": method, key: requested, "df": df, "dr": 90.0, "df_original": 99.0, "dr_original": 91.0,
                "dr_original_masked": 92.0, "forget_images_used": 0, "epoch_equivalents": 0.1, "data_used": "retain"}

    # a file written before the rename names the request "classes"; it merges with a new one all the same
    a = {"suite": "digits", "seed": 0, "retain_budget": 400, "rows": [row("m", [3], 1.0, key="classes"),
                                                                       row("m", [4], 3.0, key="classes")]}
    b = {"suite": "digits", "seed": 0, "retain_budget": 400, "rows": [row("m", [4], 2.0), row("n", [3], 0.0)]}
    merged = merge_results([a, b])
    assert sorted((r["method"], row_requested(r)[0], r["df"]) for r in merged["rows"]) == [("m", 3, 1.0), ("m", 4, 2.0),
                                                                                       ("n", 3, 0.0)]
    with pytest.raises(InvalidRequestError, match="different suites"):
        merge_results([a, {**b, "suite": "cifar10-resnet20"}])
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    assert main(["table", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    assert "| m | retain | 2 | 1.50 | 2.00 | -1.00 |" in capsys.readouterr().out


def test_every_trainable_cifar_family_is_a_suite():
    from zeroshot_unlearn.harness.bench import SUITES
    from zeroshot_unlearn.harness.specs import get_train_spec, list_train_specs

    families = [n for n in list_train_specs() if get_train_spec(n).data == "cifar10"]
    assert len(families) >= 6
    assert {f"cifar10-{n}" for n in families} | {"cifar10-resnet20", "cifar10-resnet32", "cifar10-resnet44"} <= set(SUITES)
    with pytest.raises(InvalidRequestError, match="cifar10-convnext_atto"):
        run_bench("cifar10-nonet", progress=False)


def test_trained_family_suite_trains_its_checkpoint_once(shared_data, monkeypatch):
    import dataclasses

    import zeroshot_unlearn.harness.training as train_module
    from zeroshot_unlearn.harness.bench import SUITES
    from zeroshot_unlearn.harness import specs as trained

    spec = trained.get_train_spec("resnet10t")
    monkeypatch.setitem(trained._SPECS, "resnet10t",
                        dataclasses.replace(spec, train=dataclasses.replace(spec.train, epochs=0.05)))
    results = run_bench("cifar10-resnet10t", data_dir=str(shared_data), requests=[[3]], methods=["logit_mask"],
                        progress=False)
    card = results["model"]
    assert card["architecture"] == "resnet10t" and 0 <= card["test_accuracy"] <= 100
    assert len(card["checkpoint_sha256"]) == 64
    assert results["rows"][0]["epoch_seconds"] > 0 and results["rows"][0]["df"] == 0.0

    def fail(*args, **kwargs):
        raise AssertionError("the suite trained its checkpoint again")

    monkeypatch.setattr(train_module, "train_classifier", fail)
    model, _ = SUITES["cifar10-resnet10t"].load(str(shared_data))
    assert model.pretrained_cfg["checkpoint_sha256"] == card["checkpoint_sha256"]
