"""Write the NAS-Bench-201 accuracy table (``nb201_accuracy.csv.gz``, the format of
``shared/data/nasbench201``) from the official NATS-Bench topology file.

Needs the ``nats_bench`` package (``pip install nats_bench``) and the benchmark file of
"NATS-Bench: Benchmarking NAS Algorithms for Architecture Topology and Size" (arXiv
2009.00437), e.g. ``NATS-tss-v1_0-3ffb9-simple`` (the NAS-Bench-201 cells with more trials;
``NAS-Bench-201-v1_1-096897.pth`` holds the same cells). Values are means over the
benchmark's trials. Columns written (accuracy in %, params and FLOPs in millions)::

    index, arch_str, e0_1 .. e2_3,
    cifar10_valid_200, cifar10_valid_test_200, cifar10_test_200,
    cifar100_valid_200, cifar100_test_200, imagenet16_valid_200, imagenet16_test_200,
    cifar10_valid_12, cifar10_test_12, cifar100_valid_12, cifar100_test_12,
    imagenet16_valid_12, imagenet16_test_12,
    params_cifar10_api_M, flops_cifar10_api_M

Usage::

    python scripts/convert_nb201.py /data/NATS-tss-v1_0-3ffb9-simple --out-dir /data/nb201
    python scripts/bench_search.py --data-dir /data/nb201     # or NB201Table("/data/nb201")

The shipped copy also has NASLib-derived cost columns and two more files (zero-cost scores,
latencies) that the official file does not hold; :class:`~nas.evaluate.tabular.NB201Table`
works without them.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.spaces import NB201Space
from nas.spaces.nb201 import NB201_EDGES

EDGES = tuple(f"e{i}_{j}" for i, j in NB201_EDGES)
#: column -> (benchmark dataset, hp, key of ``get_more_info``)
ACCURACIES: dict[str, tuple[str, str, str]] = {
    "cifar10_valid_200": ("cifar10-valid", "200", "valid-accuracy"),
    # the API files cifar10-valid's CIFAR-10 test-set accuracy under "test-accuracy"
    "cifar10_valid_test_200": ("cifar10-valid", "200", "test-accuracy"),
    "cifar10_test_200": ("cifar10", "200", "test-accuracy"),
    "cifar100_valid_200": ("cifar100", "200", "valid-accuracy"),
    "cifar100_test_200": ("cifar100", "200", "test-accuracy"),
    "imagenet16_valid_200": ("ImageNet16-120", "200", "valid-accuracy"),
    "imagenet16_test_200": ("ImageNet16-120", "200", "test-accuracy"),
    "cifar10_valid_12": ("cifar10-valid", "12", "valid-accuracy"),
    "cifar10_test_12": ("cifar10", "12", "test-accuracy"),
    "cifar100_valid_12": ("cifar100", "12", "valid-accuracy"),
    "cifar100_test_12": ("cifar100", "12", "test-accuracy"),
    "imagenet16_valid_12": ("ImageNet16-120", "12", "valid-accuracy"),
    "imagenet16_test_12": ("ImageNet16-120", "12", "test-accuracy"),
}
COLUMNS = ("index", "arch_str", *EDGES, *ACCURACIES, "params_cifar10_api_M", "flops_cifar10_api_M")


class BenchmarkAPI(Protocol):
    """The part of the ``nats_bench`` topology API this script reads."""

    def __len__(self) -> int: ...
    def arch(self, index: int) -> str: ...
    def get_more_info(
        self,
        index: int,
        dataset: str,
        iepoch: int | None = None,
        hp: str = "12",
        is_random: bool = True,
    ) -> dict[str, Any]: ...
    def get_cost_info(self, index: int, dataset: str, hp: str = "12") -> dict[str, Any]: ...


def rows(api: BenchmarkAPI) -> Iterator[list[object]]:
    """One table row per cell of ``api``, in index order (trial means: ``is_random=False``)."""
    space = NB201Space()
    for index in range(len(api)):
        arch_str = api.arch(index)
        infos: dict[tuple[str, str], dict[str, Any]] = {}
        values: list[object] = [index, arch_str, *space.from_str(arch_str)]
        for dataset, hp, key in ACCURACIES.values():
            if (dataset, hp) not in infos:
                infos[dataset, hp] = api.get_more_info(index, dataset, hp=hp, is_random=False)
            info = infos[dataset, hp]
            if key not in info:
                raise KeyError(
                    f"cell {index}: the benchmark has no {key!r} for dataset {dataset!r}, hp "
                    f"{hp!r} (it has {sorted(info)}); is this the NATS-Bench topology file?"
                )
            values.append(info[key])
        cost = api.get_cost_info(index, "cifar10", hp="200")
        values += [cost["params"], cost["flops"]]
        yield values


def write_table(api: BenchmarkAPI, out_dir: Path) -> Path:
    """``out_dir/nb201_accuracy.csv.gz`` from ``api``, written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "nb201_accuracy.csv.gz"
    tmp = path.with_suffix(".tmp")
    try:
        with gzip.open(tmp, "wt", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            for i, row in enumerate(rows(api)):
                writer.writerow(row)
                if (i + 1) % 1000 == 0:
                    print(f"{i + 1}/{len(api)} cells", file=sys.stderr, flush=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("benchmark", type=Path, help="NATS-Bench tss file or directory")
    p.add_argument("--out-dir", type=Path, required=True, help="where the table goes")
    args = p.parse_args(argv)
    if not args.benchmark.exists():
        raise SystemExit(f"benchmark file {args.benchmark} not found")
    try:
        from nats_bench import create
    except ImportError:
        raise SystemExit(
            "convert_nb201 needs the nats_bench package: pip install nats_bench"
        ) from None
    api = create(str(args.benchmark), "tss", fast_mode=True, verbose=False)
    print(f"wrote {write_table(api, args.out_dir)}")


if __name__ == "__main__":
    main()
