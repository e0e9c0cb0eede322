"""The README and docs/ say what the code does: their links resolve, every command in them parses with the
real parser, the README's quick start runs as written, and the option tables of docs/cli.md are the parser's.

``python tests/test_docs.py --write`` regenerates the option tables in docs/cli.md from the parser.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CLI_PAGE = REPO / "docs" / "cli.md"
TABLE = re.compile(r"<!-- options: ([a-z -]+) -->\n.*?<!-- /options -->", re.S)


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def commands(text: str) -> list[str]:
    """The ``zeroshot-unlearn ...`` commands of a page's bash blocks, continuation lines joined, comments and
    optional ``[...]`` parts dropped."""
    found = []
    for block in code_blocks(text, "bash"):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            # commands chained with && or "; " (a ; inside a quoted --requests list is not a separator)
            for part in re.split(r"\s&&\s|;\s+(?=\S)", line.split(" #")[0]):
                part = re.sub(r"\[[^\]]*\]", "", part).strip()
                if part.startswith("zeroshot-unlearn "):
                    found.append(part)
    return found


def inline_commands(text: str) -> list[str]:
    """The ``zeroshot-unlearn ...`` commands written inline (in single backticks) outside code blocks."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    return [re.sub(r"\[[^\]]*\]", "", m).strip() for m in re.findall(r"`(zeroshot-unlearn [^`]+)`", prose)]


def _names_a_command(parser, words: list[str]) -> bool:
    """Whether ``words`` is a path of subcommands of ``parser`` (``["generator", "fit"]``)."""
    for word in words:
        choices = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if not choices or word not in choices:
            return False
        parser = choices[word]
    return bool(words)


def _parser():
    from zeroshot_unlearn.cli import build_parser

    return build_parser()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every command's parser by its full name (``forget``, ``generator fit``)."""
    out = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out[name] = sub
                out.update({f"{name} {inner}": p for inner, p in _subparsers(sub).items()})
    return out


def options_table(parser: argparse.ArgumentParser) -> str:
    lines = ["| option | default | meaning |", "| --- | --- | --- |"]
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        names = ", ".join(f"`{o}`" for o in action.option_strings)
        if action.metavar or action.nargs not in (None, 0) or not isinstance(action, argparse._StoreTrueAction):
            if not isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
                names += f" {action.metavar or action.dest.upper()}"
        default = "" if action.default is None or action.default is False or action.default == argparse.SUPPRESS \
            else f"`{action.default}`"
        if action.required:
            default = "required"
        meaning = " ".join((action.help or "").replace("%%", "%").split()).replace("|", "\\|")
        lines.append(f"| {names} | {default} | {meaning} |")
    return "\n".join(lines)


def rendered_cli_page(text: str) -> str:
    subs = _subparsers(_parser())
    return TABLE.sub(lambda m: f"<!-- options: {m.group(1)} -->\n{options_table(subs[m.group(1)])}\n<!-- /options -->",
                     text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_local_links_resolve(page):
    missing = []
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
        if not target.startswith(("http://", "https://", "mailto:")) and not (page.parent / target).exists():
            missing.append(target)
    assert not missing, f"{page.name} links to missing files: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_on_the_page_parses(page):
    parser = _parser()
    text = page.read_text(encoding="utf-8")
    found = commands(text) + inline_commands(text)
    if re.search(r"zeroshot-unlearn [a-z]", re.sub(r"`zeroshot-unlearn`", "", text)):
        assert found, f"{page.name} mentions a command but the test finds none to parse"
    bad = []
    for command in found:
        if "..." in command or re.search(r"\b[A-Z]{4,}\b", command):  # abbreviated, or a placeholder
            continue
        words = shlex.split(command)[1:]
        if not any(w.startswith("-") for w in words) and _names_a_command(parser, words):
            continue  # the command named in prose (`generator fit`), not a call: it must exist
        try:
            parser.parse_args(words)
        except SystemExit:
            bad.append(command)
    assert not bad, f"{page.name}: these commands do not parse with the real parser: {bad}"


def test_the_readme_has_the_two_commands_ci_and_a_user_run():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert "pip install -e . && zeroshot-unlearn demo" in text
    test_command = 'pip install -e ".[test]" && python -m pytest -q -m "not slow"'
    assert test_command in text
    assert 'python -m pytest -q -m "not slow"' in (REPO / ".ci" / "run").read_text()
    assert len(text.splitlines()) <= 300


def test_the_recipes_page_lists_every_registered_recipe_with_its_patterns():
    from zeroshot_unlearn.recipes import list_recipes

    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \| ([^|]+) \|", (REPO / "docs" / "recipes.md")
                                                     .read_text(encoding="utf-8"), re.M)}
    for name, patterns in list_recipes().items():
        assert name in rows, f"docs/recipes.md has no row for recipe {name}"
        if name != "default":
            assert all(f"`{pattern}`" in rows[name] for pattern in patterns), (name, patterns, rows[name])


def test_cli_option_tables_are_the_parsers():
    text = CLI_PAGE.read_text(encoding="utf-8")
    tables = TABLE.findall(text)
    assert {"forget", "audit", "bench", "train"} <= set(tables), "docs/cli.md lost an option table"
    assert text == rendered_cli_page(text), "docs/cli.md's option tables differ from the parser: run " \
                                            "`python tests/test_docs.py --write`"


def test_the_method_of_your_own_example_runs_as_written(tmp_path):
    """docs/how-it-works.md's example method registers, validates its section, runs and is recorded."""
    block = next(b for b in code_blocks((REPO / "docs" / "how-it-works.md").read_text(encoding="utf-8"), "python")
                 if "register_method" in b)
    call = ("\nimport warnings\nfrom zeroshot_unlearn import forget_classes, load_model\n"
            "warnings.simplefilter('ignore')\n"
            "model = load_model('digits_cnn', pretrained=True)\n"
            "result = forget_classes(model, [3], retain=None, method='shrink_head', "
            "overrides={'shrink_head.factor': 0.1}, strict=False, progress=False)\n"
            "assert result.method == 'shrink_head' and 'shrink_head.factor' in result.recipe_keys_read\n"
            "assert (result.model.fc.weight[3] - 0.1 * model.fc.weight[3]).abs().max() < 1e-6\n"
            "print('ok')\n")
    run = subprocess.run([sys.executable, "-c", block + call], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-3000:]


def test_readme_quick_start_runs_as_written(tmp_path):
    """The README's Python quick start and its command-line quick start, run in a fresh folder."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    python_block = next(b for b in code_blocks(text, "python") if "retained_subset" in b)
    cli_block = next(b for b in code_blocks(text, "bash") if "zeroshot-unlearn forget" in b)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-c", python_block], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "forget class" in run.stdout and "'total'" in run.stdout
    assert (tmp_path / "out" / "model.safetensors").is_file()
    console = Path(sys.executable).with_name("zeroshot-unlearn")
    shell = tmp_path / "shell"
    shell.mkdir()
    ran = []
    for command in commands(f"```bash\n{cli_block}```"):
        argv = shlex.split(command)
        argv[0] = str(console) if console.exists() else argv[0]
        done = subprocess.run(argv, cwd=shell, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command}: {done.stderr[-3000:]}"
        ran.append(argv[1])
    assert ran == ["forget", "audit", "info"]
    assert (shell / "out" / "metrics.json").is_file() and (shell / "audit" / "report.html").is_file()


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        sys.path.insert(0, str(REPO))
        CLI_PAGE.write_text(rendered_cli_page(CLI_PAGE.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"rewrote the option tables of {CLI_PAGE}")
    else:
        sys.exit("usage: python tests/test_docs.py --write")
