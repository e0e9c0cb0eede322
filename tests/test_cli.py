import json

import pytest

from zeroshot_unlearn import load_model
from zeroshot_unlearn.cli import main


def test_forget_writes_model_recipe_and_metrics(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["forget", "--model", "digits_cnn", "--checkpoint", "digits_cnn.safetensors", "--classes", "3", "7",
                 "--retain-data", "digits", "--retain-budget", "400", "--set", "generator.steps=5", "--out", str(out),
                 "--quiet"])
    assert code == 0
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "recipe.yaml", "metrics.json"}
    metrics = json.loads((out / "metrics.json").read_text())
    row = metrics["rows"][0]
    assert row["classes"] == [3, 7] and row["forget_images_used"] == 0 and row["retained_images"] == 400
    assert row["df"] < row["df_original"]
    model = load_model(checkpoint=out / "model.safetensors")  # architecture read from the file's metadata
    assert model.pretrained_cfg["architecture"] == "digits_cnn"
    assert model.unlearning_history[-1]["classes"] == [3, 7]
    assert "generator:\n  kind: network" in (out / "recipe.yaml").read_text()

    # The audit subcommand on that output: a report next to the library-trained retrain reference.
    code = main(["audit", "--original", "digits_cnn.safetensors", "--unlearned", str(out / "model.safetensors"),
                 "--classes", "3", "7", "--data", "digits", "--retain-budget", "400", "--out", str(tmp_path / "audit"),
                 "--quiet"])
    assert code == 0
    report = json.loads((tmp_path / "audit" / "report.json").read_text())
    assert set(report["metrics"]) >= {"original", "unlearned", "retrain", "dr_original_masked"}
    assert report["metrics"]["unlearned"]["df"] == pytest.approx(row["df"], abs=0.005)
    assert "MIA-forget" in capsys.readouterr().out


def test_forget_refuses_a_non_empty_out(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    code = main(["forget", "--model", "digits_cnn", "--checkpoint", "digits_cnn.safetensors", "--classes", "3",
                 "--retain-data", "digits", "--out", str(out)])
    assert code == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "precious"


def test_validation_errors_exit_2_with_one_line(tmp_path, capsys):
    code = main(["forget", "--model", "digits_cnn", "--checkpoint", "digits_cnn.safetensors", "--classes", "12",
                 "--retain-data", "digits", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "out of range" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_recipes_lists_patterns(capsys):
    assert main(["recipes"]) == 0
    text = capsys.readouterr().out
    assert "cifar_resnet" in text and "cifar10_resnet*" in text and "digits_cnn" in text


def test_usage_error_exits_2():
    with pytest.raises(SystemExit) as info:
        main(["forget"])
    assert info.value.code == 2
