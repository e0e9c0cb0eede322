"""A normal install: the wheel carries everything the library reads, and runs outside the repository."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import torch

from conftest import REPO


def _run(command, cwd, env, timeout=300):
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_wheel_installs_and_runs_outside_the_repository(tmp_path):
    # Built from a copy of the sources: a build in the checkout leaves build/lib behind, whose stale modules
    # (a file since moved into a package) a later wheel would carry.
    source = tmp_path / "source"
    for name in ("pyproject.toml", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    for folder in ("zeroshot_unlearn", "recipes", "checkpoints", "generators"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), str(source)],
         cwd=tmp_path, env=os.environ, timeout=600)
    (wheel,) = dist.glob("zeroshot_unlearn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (REPO / "zeroshot_unlearn").rglob("*.py"):  # every module of every package (the list is by hand)
        assert module.relative_to(REPO).as_posix() in names, f"{module} is not in the wheel: list its package"
    for folder in ("recipes", "checkpoints", "generators"):  # every shipped file, by the repository's own listing
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and path.name != ".gitkeep":
                assert f"zeroshot_unlearn/_shipped/{path.relative_to(REPO).as_posix()}" in names, path

    # A fresh environment holding the wheel and nothing of the repository. Its dependencies come from
    # this test's environment through a .pth line (a full install would download torch again); .pth
    # files of that folder (this checkout's editable install) are not read from there.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=os.environ)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)], cwd=tmp_path,
         env=os.environ)
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path,
                     os.environ).strip())
    (site / "test_dependencies.pth").write_text(str(Path(torch.__file__).resolve().parents[1]) + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ZEROSHOT_UNLEARN_RECIPES")}
    env["ZEROSHOT_UNLEARN_HOME"] = str(tmp_path / "home")
    where = _run([str(python), "-c", "import zeroshot_unlearn; print(zeroshot_unlearn.__file__)"], elsewhere, env)
    assert Path(where.strip()).is_relative_to(venv), where
    script = venv / "bin" / "zeroshot-unlearn"
    listing = _run([str(script), "recipes"], elsewhere, env)
    assert "cifar_resnet" in listing and "digits_cnn" in listing
    demo = _run([str(script), "demo", "--quiet"], elsewhere, env)
    assert "retrain reference shipped with the package" in demo, demo
    unlearned_df = float(next(line for line in demo.splitlines() if line.strip().startswith("unlearned |"))
                         .split("|")[1])
    assert unlearned_df <= 1.0, demo
    assert not any(elsewhere.iterdir()), "the demo must not write into the current folder"


def test_the_library_never_loads_the_harness_or_the_research_scripts():
    """Forgetting and auditing import neither the benchmark harness nor research/ (a fresh interpreter)."""
    code = ("import sys; from zeroshot_unlearn import forget_classes, audit, load_model, list_methods; "
            "import zeroshot_unlearn.api, zeroshot_unlearn.plan, zeroshot_unlearn.run, zeroshot_unlearn.audit.report, zeroshot_unlearn.generators.amortised; "
            "list_methods(); "
            "print(sorted(m for m in sys.modules if m.startswith(('zeroshot_unlearn.harness', 'research'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
