"""``zeroshot-unlearn fetch-data``."""

from __future__ import annotations

import argparse
from typing import Callable


def cmd_fetch_data(args) -> int:
    from ..harness.benchmark_data import fetch_benchmark_data

    folder = fetch_benchmark_data(args.out, download_root=args.download_root)
    print(f"wrote the benchmark data folder {folder} (cifar10_test.npz, cifar10_train_subset.npz, checkpoints/); "
          f"run the tests with ZEROSHOT_UNLEARN_SHARED={folder.parent} if it is not ../shared/data")
    return 0


def add_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    fetch = command("fetch-data", "build the benchmark data folder the CIFAR-10 tests and benchmarks read "
                                  "(downloads CIFAR-10 through torchvision and the public checkpoints; needs the "
                                  "network)")
    fetch.add_argument("--out", required=True, help="folder to write (e.g. ../shared/data beside the repository)")
    fetch.add_argument("--download-root", default=None,
                       help="where torchvision keeps the CIFAR-10 archive; default: the cache folder")
    fetch.set_defaults(func=cmd_fetch_data)
