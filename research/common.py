"""What the research scripts share: the request options, configuration selection, feature-space
linear algebra and where results go. The scripts run from the repository root as modules
(``python -m research.erasure_bound ...``) and read the library only through its modules."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from zeroshot_unlearn import load_model
from zeroshot_unlearn.data import DataSplits, ImageTensorDataset, load_data, retained_subset
from zeroshot_unlearn.io import write_json, write_text

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks"
"""Where measured results live (JSON, markdown, plots, RESULTS.md), in a folder per suite or topic."""


def result_file(name: str) -> Path:
    """A results file by its name, wherever it lives under ``benchmarks/`` (names are unique there); a path
    under ``benchmarks/`` itself when there is none yet."""
    found = sorted(RESULTS.rglob(name))
    return found[0] if found else RESULTS / name


def request_parser(description: str, *, configurations: bool = False) -> argparse.ArgumentParser:
    """The options these measurement scripts share: data, checkpoint, request, budget, seed, output
    (and ``--configs`` for the scripts that run a table of configurations)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    if configurations:
        parser.add_argument("--configs", default="all",
                            help="comma-separated indices into the configuration table (0-based), or 'all'")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--checkpoint", default="checkpoints/resnet20-12fca82f.th",
                        help="relative to --data-dir (a cifar10_resnet20 zoo checkpoint)")
    parser.add_argument("--forget", default="3,7")
    parser.add_argument("--retain-budget", type=int, default=2500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    return parser


@dataclass
class Request:
    """What ``request_parser``'s options name: the forget classes, the model, its data, the retained subset."""

    forget: list[int]
    model: torch.nn.Module
    data: DataSplits
    retain: ImageTensorDataset


def load_request(args: argparse.Namespace) -> Request:
    """The CIFAR-10 ResNet20 checkpoint, the benchmark data and the class-balanced retained subset."""
    forget = [int(c) for c in args.forget.split(",")]
    model = load_model("cifar10_resnet20", Path(args.data_dir) / args.checkpoint).eval()
    data = load_data(args.data_dir, model)
    return Request(forget, model, data, retained_subset(data.train, forget, args.retain_budget, seed=args.seed))


def configured_request(description: str, configs: tuple) -> tuple[argparse.Namespace, "Request", list, float]:
    """A configurations script's start: its arguments, its request, the configurations asked for, and the
    original's Df on the test split (every row's reference)."""
    from zeroshot_unlearn.evaluation import forget_retain_accuracy

    args = request_parser(description, configurations=True).parse_args()
    request = load_request(args)
    df_original = forget_retain_accuracy(request.model, request.data.test, request.forget)[0]
    return args, request, selected(configs, args.configs), df_original


def selected(configs: tuple, spec: str) -> list:
    """The configurations ``--configs`` names (indices into ``configs``, or 'all')."""
    return list(configs) if spec == "all" else [configs[int(i)] for i in spec.split(",")]


def projector(directions: list[torch.Tensor], centre: torch.Tensor):
    """f -> f with its components along ``directions`` (about ``centre``) removed."""
    basis, _ = torch.linalg.qr(torch.stack(directions, 1))
    return lambda f: f - (f - centre) @ basis @ basis.T


def keeper(basis: torch.Tensor, centre: torch.Tensor):
    """f -> f with only its components in the column space of ``basis`` (about ``centre``) kept."""
    q, _ = torch.linalg.qr(basis)
    return lambda f: centre + (f - centre) @ q @ q.T


def complement_within(basis: torch.Tensor, removed: list[torch.Tensor]) -> torch.Tensor:
    """Orthonormal basis of the column space of ``basis`` minus the directions ``removed`` (projected into it)."""
    q, _ = torch.linalg.qr(basis)
    inside, _ = torch.linalg.qr(torch.stack([q @ (q.T @ v) for v in removed], 1))
    u, _, _ = torch.linalg.svd(q - inside @ (inside.T @ q), full_matrices=False)
    return u[:, :q.shape[1] - len(removed)]


def relative_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).pow(2).sum(1).mean() / b.pow(2).sum(1).mean()


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A markdown table's lines: the header, the rule, one line per row of already formatted cells."""
    return [f"| {' | '.join(headers)} |", f"| {' | '.join('---' for _ in headers)} |",
            *(f"| {' | '.join(cells)} |" for cells in rows)]


def save_result(out: str | Path, result: dict, lines: Sequence[str]) -> None:
    """The result as JSON at ``out`` and its tables as markdown beside it (``out`` with ``.md``)."""
    write_json(out, result)
    write_text(Path(out).with_suffix(".md"), "\n".join(lines) + "\n")
