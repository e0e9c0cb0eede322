import json

import pytest
import torch

from conftest import FAST
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
    assert row["forget"] == row["requested"] == [3, 7] and row["forget_images_used"] == 0
    assert row["retained_images"] == 400
    assert row["df"] < row["df_original"]
    model = load_model(checkpoint=out / "model.safetensors")  # architecture read from the file's metadata
    assert model.pretrained_cfg["architecture"] == "digits_cnn"
    assert model.unlearning_history[-1]["forget"] == [3, 7]
    assert "generator:\n  kind: network" in (out / "recipe.yaml").read_text()
    # the time of every phase and the peak memory, printed and recorded
    printed = capsys.readouterr().out
    assert "time per phase: generator" in printed and "impair" in printed and "peak memory" in printed
    assert row["peak_memory_gib"] > 0.05 and row["peak_memory"].startswith("resident")
    assert set(row["timings"]) >= {"generator", "impair", "repair", "total"}

    # The audit subcommand on that output: a report next to the library-trained retrain reference.
    code = main(["audit", "--original", "digits_cnn.safetensors", "--unlearned", str(out),  # the folder works too
                 "--classes", "3", "7", "--data", "digits", "--retain-budget", "400", "--out", str(tmp_path / "audit"),
                 "--quiet"])
    assert code == 0
    report = json.loads((tmp_path / "audit" / "report.json").read_text())
    assert set(report["metrics"]) >= {"original", "unlearned", "retrain", "dr_original_masked"}
    assert report["metrics"]["unlearned"]["df"] == pytest.approx(row["df"], abs=0.005)
    assert report["meta"]["recipe"]["name"] == "digits"  # the run's recipe.yaml, read from the folder
    printed = capsys.readouterr().out
    assert "MIA-forget" in printed
    assert report["stage_flags"] and all(f"{name}: stages: {flag['text']}" in printed
                                         for name, flag in report["stage_flags"].items())


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


def test_help_needs_no_torch_and_documents_every_option():
    import subprocess
    import sys

    probe = ("import sys\n"
             "from zeroshot_unlearn.cli import main\n"
             "for argv in (['--help'], ['audit', '--help'], ['bench', '--help']):\n"
             "    try:\n"
             "        main(argv)\n"
             "    except SystemExit:\n"
             "        pass\n"
             "print('torch imported' if 'torch' in sys.modules else 'no torch')\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().endswith("no torch"), done.stdout + done.stderr
    assert "COMMAND --help" in done.stdout and "--seeds N" in done.stdout

    import argparse

    from zeroshot_unlearn.cli import build_parser

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield from walk(child, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction):
                yield path, action

    undocumented = [f"{path} {'/'.join(a.option_strings) or a.dest}" for path, a in walk(build_parser(), "")
                    if not a.help]
    assert undocumented == []


def test_forget_help_lists_exactly_the_registered_methods(capsys):
    import pytest

    from zeroshot_unlearn import list_methods
    from zeroshot_unlearn.cli import main

    with pytest.raises(SystemExit):
        main(["forget", "--help"])
    page = capsys.readouterr().out
    assert "examples:" in page and "methods (--method NAME" in page
    listed = page.split("methods (--method NAME", 1)[1].splitlines()[1:]
    names = [line.split()[0] for line in listed if line.startswith("  ") and line.strip()]
    assert names == sorted(list_methods())  # generated from the registry: no copy to keep in step
    for line, (name, needs) in zip(listed, sorted(list_methods().items())):
        assert line.split(maxsplit=1)[1].startswith(needs), (name, needs, line)


def _write_pickled_checkpoint(path):
    import argparse

    import torch

    torch.save({"state_dict": argparse.Namespace(weights=1)}, path)


def test_installed_cli_refuses_bad_input_in_one_line_before_any_work(tmp_path):
    """Each bad input: exit 2, one line on stderr, no traceback, nothing written (console script, subprocess)."""
    import concurrent.futures
    import os
    import subprocess
    import sys
    from pathlib import Path

    from conftest import REPO

    script = Path(sys.executable).parent / "zeroshot-unlearn"
    shipped = REPO / "checkpoints" / "digits_cnn.safetensors"
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(shipped.read_bytes()[: shipped.stat().st_size // 2])
    pickled = tmp_path / "pickled.pth"
    _write_pickled_checkpoint(pickled)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("precious")
    base = ["forget", "--model", "digits_cnn", "--retain-data", "digits", "--retain-budget", "400"]
    cases = {
        "all classes": ["--classes", *map(str, range(10))],
        "duplicate": ["--classes", "3", "3"],
        "out of range": ["--classes", "12"],
        "unknown class name": ["--classes", "cat"],
        "missing checkpoint": ["--classes", "3", "--checkpoint", str(tmp_path / "nope.safetensors")],
        "truncated checkpoint": ["--classes", "3", "--checkpoint", str(truncated)],
        "pickled checkpoint": ["--classes", "3", "--checkpoint", str(pickled)],
        "unknown recipe": ["--classes", "3", "--recipe", "nosuch"],
        "unknown method": ["--classes", "3", "--method", "nosuch"],
        "bad --set value": ["--classes", "3", "--set", "impair.lr=fast"],
        "bad --set key": ["--classes", "3", "--set", "impair.speed=1"],
        "negative budget": ["--classes", "3", "--retain-budget", "-5"],
        "budget not a number": ["--classes", "3", "--retain-budget", "many"],
        "budget below one per class": ["--classes", "3", "--retain-budget", "3"],
        "missing data folder": ["--classes", "3", "--retain-data", str(tmp_path / "no-data")],
        "non-empty out": ["--classes", "3", "--out", str(full)],
        "data-free with retained data": ["--classes", "3", "--data-free"],
        "timm format of a zoo model": ["--classes", "3", "--save-format", "timm"],
        "unknown method section key": ["--classes", "3", "--method", "masked_kd", "--set", "masked_kd.epoch=2"],
        "unknown depth": ["--classes", "3", "--depth", "deep"],
        "depth without a setting": ["--classes", "3", "--depth", "representation"],
    }
    env = {**os.environ, "ZEROSHOT_UNLEARN_HOME": str(tmp_path / "home")}

    def run(item):
        name, extra = item
        out = tmp_path / "out" / name.replace(" ", "-")
        argv = [str(script), *base, "--out", str(out), *extra]  # a later --out / --retain-* wins
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
        return name, out, done

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, cases.items()))
    for name, out, done in results:
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, f"{name}: exit {done.returncode}\n{done.stderr}"
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{name}: {done.stderr!r}"
        assert "Traceback" not in done.stderr and done.stdout == "", name
        assert not out.exists(), f"{name}: wrote {out}"
    assert [p.name for p in full.iterdir()] == ["keep.txt"] and (full / "keep.txt").read_text() == "precious"
    assert not (tmp_path / "out").exists()


def test_retained_image_folder_with_names_from_a_file(tmp_path, digits):
    """An ImageFolder of the retained digits only, folders named in words, mapped by a --class-names file."""
    import numpy as np
    from PIL import Image

    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    names = tmp_path / "names.txt"
    names.write_text("\n".join(words) + "\n")
    pixels = (digits.train.x * 0.3081 + 0.1307).clamp(0, 1).mul(255).round().byte().numpy()
    for c in range(10):
        if c in (3, 7):
            continue  # deleted: no folder for the forgotten classes
        folder = tmp_path / "retained" / words[c]
        folder.mkdir(parents=True)
        for i, row in enumerate(np.flatnonzero(digits.train.y.numpy() == c)[:20]):
            Image.fromarray(pixels[row, 0]).save(folder / f"{i}.png")
    out = tmp_path / "out"
    code = main(["forget", "--model", "digits_cnn", "--classes", "three", "seven", "--retain-data",
                 str(tmp_path / "retained"), "--class-names", str(names), "--retain-budget", "160", "--set",
                 "generator.steps=5", "--out", str(out), "--quiet"])
    assert code == 0
    row = json.loads((out / "metrics.json").read_text())["rows"][0]
    assert row["forget"] == [3, 7] and row["retained_images"] == 160
    model = load_model(checkpoint=out / "model.safetensors")
    assert model.unlearning_history[-1]["requested"] == [3, 7]


def test_cifar_retained_image_folder_by_class_name(tmp_path, shared_data):
    """The newcomer's tree: CIFAR-10 training PNGs of the eight retained classes under their names, no cat/ or horse/."""
    import numpy as np
    from PIL import Image

    from zeroshot_unlearn.data import load_data

    with np.load(shared_data / "cifar10_train_subset.npz") as npz:
        x, y, names = npz["x"], npz["y"], [str(n) for n in npz["classes"]]
    for c in range(10):
        if c in (3, 7):
            continue
        folder = tmp_path / "retained" / names[c]
        folder.mkdir(parents=True)
        for i, row in enumerate(np.flatnonzero(y == c)[:50]):
            Image.fromarray(x[row]).save(folder / f"{i}.png")
    checkpoint = shared_data / "checkpoints" / "resnet20-12fca82f.th"
    tree = load_data(tmp_path / "retained", load_model("cifar10_resnet20", checkpoint))
    expected = [c for c in range(10) if c not in (3, 7) for _ in range(50)]
    assert tree.train.y.tolist() == expected  # deer is 4 and truck 9, as in the model's head
    out = tmp_path / "out"
    code = main(["forget", "--model", "cifar10_resnet20", "--checkpoint", str(checkpoint), "--classes", "cat",
                 "horse", "--retain-data", str(tmp_path / "retained"), "--retain-budget", "400", "--set",
                 "generator.steps=5", "--set", "impair.epochs=0.5", "--set", "repair.epochs=0.25", "--set",
                 "self_check.enabled=false", "--out", str(out),
                 "--quiet"])
    assert code == 0
    row = json.loads((out / "metrics.json").read_text())["rows"][0]
    assert row["forget"] == [3, 7] and row["retained_images"] == 400
    assert load_model(checkpoint=out / "model.safetensors").pretrained_cfg["label_names"][3] == "cat"


def test_data_free_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["forget", "--model", "digits_cnn", "--classes", "3", "7", "--data-free", "--eval-data", "digits",
                 "--set", "generator.steps=10", "--set", "data_free.memories_per_epoch=256", "--no-strict",
                 "--out", str(out), "--quiet"])
    assert code in (0, 3)  # this shortened schedule may not pass its checks; what it ran is the point here
    row = json.loads((out / "metrics.json").read_text())["rows"][0]
    assert row["data_free"] is True and row["retained_images"] == 0 and row["forget_images_used"] == 0
    assert row["method"] == "anti_memory_data_free" and row["df"] is not None and row["df_original"] > 90
    assert load_model(checkpoint=out).unlearning_history[-1]["retained_images"] == 0
    code = main(["forget", "--model", "digits_cnn", "--classes", "3", "--out", str(tmp_path / "none")])
    assert code == 2 and "pass --retain-data DATA, or --data-free" in capsys.readouterr().err


def test_sequential_requests_from_the_command_line_keep_earlier_classes_forgotten(tmp_path, capsys, digits):
    from zeroshot_unlearn.evaluation import forget_retain_accuracy

    first, second = tmp_path / "first", tmp_path / "second"
    common = ["--retain-data", "digits", "--retain-budget", "400", "--quiet"]
    assert main(["forget", "--model", "digits_cnn", "--classes", "3", "--out", str(first), *common]) == 0
    # the earlier output folder is the model: its file names its architecture and carries the history
    assert main(["forget", "--checkpoint", str(first), "--classes", "7", "--out", str(second), *common]) == 0
    model = load_model(checkpoint=second)
    assert [e["requested"] for e in model.unlearning_history] == [[3], [7]]
    assert model.unlearning_history[-1]["forget"] == [3, 7]
    df, _ = forget_retain_accuracy(model, digits.test, [3, 7])
    df_3, _ = forget_retain_accuracy(model, digits.test, [3])
    assert df <= 1.0 and df_3 <= 1.0
    capsys.readouterr()
    assert main(["info", str(second), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [c["id"] for c in info["classes"] if c["forgotten"]] == [3, 7]
    assert info["architecture"] == "digits_cnn" and info["recipe"] == "digits" and info["input_size"] == [1, 28, 28]
    assert len(info["unlearning_history"]) == 2
    assert main(["info", str(second)]) == 0
    text = capsys.readouterr().out
    assert "forgot [7] (all forgotten: [3, 7]) with anti_memory" in text and "recipe (auto)  digits" in text


def test_amnesiac_from_the_command_line(tmp_path, capsys, digits_training_log):
    trained, folder = digits_training_log
    out = tmp_path / "out"
    code = main(["forget", "--checkpoint", str(trained.path), "--classes", "3", "7", "--method", "amnesiac",
                 "--training-log", str(folder), "--retain-data", "digits", "--retain-budget", "400", "--no-strict",
                 "--out", str(out), "--quiet"])
    assert code in (0, 3)  # it forgets by undoing everything; whether Dr survives is what the bench row measures
    row = json.loads((out / "metrics.json").read_text())["rows"][0]
    assert row["method"] == "amnesiac" and row["forget_images_used"] == 0
    history = load_model(checkpoint=out).unlearning_history[-1]
    assert history["method_details"]["undone_fraction"] == 1.0
    # the shipped model is not the one this log recorded: refused before any work, nothing written
    code = main(["forget", "--model", "digits_cnn", "--classes", "3", "--method", "amnesiac", "--training-log",
                 str(folder), "--retain-data", "digits", "--out", str(tmp_path / "refused")])
    assert code == 2 and "recorded for another model" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()


def test_audit_compare_refuses_a_model_of_another_request(tmp_path, capsys):
    out = tmp_path / "out5"
    assert main(["forget", "--model", "digits_cnn", "--checkpoint", "digits_cnn.safetensors", "--classes", "5",
                 "--retain-data", "digits", "--retain-budget", "400", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    code = main(["audit", "--original", "digits_cnn.safetensors", "--unlearned", str(out),  # the folder works too
                 "--compare", str(out / "model.safetensors"), "--classes", "3", "7", "--data", "digits",
                 "--out", str(tmp_path / "audit"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "forgot [5], not the audited classes [3, 7]" in err and "Traceback" not in err
    assert not (tmp_path / "audit").exists() or not any((tmp_path / "audit").iterdir())


def test_recipes_show_prints_every_setting_as_yaml(capsys):
    import yaml

    from zeroshot_unlearn.recipes import load_recipe, recipe_keys

    assert main(["recipes", "--show", "cifar100_resnet"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert set(recipe_keys()) - {"name", "description", "matches"} <= set(shown)
    assert shown["self_check"]["min_confidence"] == 0.5  # its own setting, over the base's 0.9
    assert shown["impair"]["lr"] == load_recipe("cifar100_resnet").impair.lr  # inherited from cifar_resnet
    assert main(["recipes", "--show", "no_such_recipe"]) == 2
    assert "no_such_recipe" in capsys.readouterr().err


def test_bench_with_a_reference_file_puts_it_beside_the_method(tmp_path, capsys):
    from zeroshot_unlearn._resources import checkpoints_dir

    out = tmp_path / "r.json"
    reference = checkpoints_dir() / "digits_cnn-retrain-without-3-7.safetensors"
    assert main(["bench", "--suite", "digits", "--requests", "3,7", "--methods", "logit_mask", "retrain",
                 "--reference", f"3,7:{reference}", "--reference-model", "digits_cnn", "--out", str(out),
                 "--quiet"]) == 0
    rows = {r["method"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"logit_mask", "retrain"}
    assert rows["retrain"]["df"] == 0.0 and rows["retrain"]["dr"] > 95  # the shipped reference (97.68)
    assert rows["logit_mask"]["dr_retrain"] == rows["retrain"]["dr"]
    assert "| retrain |" in capsys.readouterr().out and out.with_suffix(".md").is_file()
    assert main(["bench", "--suite", "digits", "--reference", "3,7", "--out", str(out)]) == 2
    assert "CLASSES:PATH" in capsys.readouterr().err


def test_frozen_bn_policy_keeps_every_running_statistic(model_copy, digits_retain):
    from zeroshot_unlearn import forget_classes
    from zeroshot_unlearn.surgery import batchnorm_modules

    frozen = forget_classes(model_copy, [3, 7], retain=digits_retain, progress=False,
                            overrides={**FAST, "bn_policy": "frozen"}).model
    moving = forget_classes(model_copy, [3, 7], retain=digits_retain, progress=False, overrides=FAST).model
    pairs = list(zip(batchnorm_modules(frozen), batchnorm_modules(model_copy), batchnorm_modules(moving)))
    assert pairs
    for after, before, _real_only in pairs:
        assert torch.equal(after.running_mean, before.running_mean) and torch.equal(after.running_var, before.running_var)
    # without the policy the real retained batches do move them (so the check above can fail)
    assert any(not torch.equal(m.running_mean, b.running_mean) for _, b, m in pairs)
