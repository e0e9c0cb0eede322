"""What the research scripts share: the request options, configuration selection, feature-space
linear algebra and where results go. The scripts run from the repository root as modules
(``python -m research.erasure_bound ...``) and read the library only through its modules."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks"
"""Where measured results live (JSON, markdown, plots, RESULTS.md)."""


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
