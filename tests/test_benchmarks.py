"""Results a reader can find: the index of claims in benchmarks/RESULTS.md matches its files, and every
results folder's README lists each of its files with the command that regenerates it."""

import json
import re
import shlex
from pathlib import Path

import pytest

from zeroshot_unlearn.harness.bench import row_requested

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
CLAIM = re.compile(r"^\| (?P<claim>[^|]+) \| (?P<figure>[-0-9.]+) \| \[[^\]]+\]\((?P<file>[^)]+)\) \| "
                   r"(?P<method>\S+) (?P<classes>[0-9,-]+) → (?P<column>\w+) \|$")


def _classes(text: str) -> list[int]:
    if "-" in text:
        low, high = map(int, text.split("-"))
        return list(range(low, high + 1))
    return [int(c) for c in text.split(",")]


def claims() -> list[dict]:
    lines = (BENCHMARKS / "RESULTS.md").read_text(encoding="utf-8").split("## Index of claims", 1)[1]
    table = lines.split("\n# ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith(("| claim", "| ---"))]
    parsed = [CLAIM.match(line) for line in rows]
    assert all(parsed), f"lines of the index that do not read as a claim: {[r for r, m in zip(rows, parsed) if not m]}"
    return [m.groupdict() for m in parsed]


def test_every_claim_in_the_index_matches_its_file():
    found = claims()
    assert len(found) >= 15
    wrong = []
    for claim in found:
        rows = json.loads((BENCHMARKS / claim["file"]).read_text(encoding="utf-8"))["rows"]
        row = next((r for r in rows if r["method"] == claim["method"] and row_requested(r) == _classes(claim["classes"])),
                   None)
        if row is None or row.get(claim["column"]) is None:
            wrong.append((claim["claim"], "no such row or column"))
        elif f"{row[claim['column']]:.2f}" != f"{float(claim['figure']):.2f}":
            wrong.append((claim["claim"], claim["figure"], row[claim["column"]]))
    assert not wrong, f"claims that differ from their files: {wrong}"


def _folders() -> list[Path]:
    return sorted({p.parent for p in BENCHMARKS.rglob("*") if p.is_file() and p.parent != BENCHMARKS})


@pytest.mark.parametrize("folder", _folders(), ids=lambda p: str(p.relative_to(BENCHMARKS)))
def test_every_results_folder_says_how_each_file_is_made(folder):
    readme = folder / "README.md"
    assert readme.is_file(), f"{folder} has no README.md (python -m research.bench_readme writes one)"
    text = readme.read_text(encoding="utf-8")
    unlisted = [p.name for p in folder.iterdir() if p.is_file() and p.name != "README.md" and p.name not in text]
    assert not unlisted, f"{readme} does not list {unlisted}"


def test_the_generated_bench_commands_parse():
    from zeroshot_unlearn.cli import build_parser

    parser = build_parser()
    commands = [c for folder in _folders() for c in re.findall(r"`(zeroshot-unlearn bench [^`]+)`",
                                                              (folder / "README.md").read_text(encoding="utf-8"))
                if (folder / "README.md").is_file()]
    assert len(commands) > 50
    for command in commands:
        if "..." not in command:
            parser.parse_args(shlex.split(command)[1:])
