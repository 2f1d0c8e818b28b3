"""The NAS-Bench-201 tables as an evaluator ("NAS-Bench-201: Extending the Scope of
Reproducible Neural Architecture Search", arXiv 2001.00326).

The offline copy (``shared/data/nasbench201/``, see its README) holds one row per cell, in
the official index order, in three gzip'd CSV files: accuracies/params/FLOPs, zero-cost proxy
scores, and measured latencies. :class:`NB201Table` joins them by index and reads any numeric
column; :class:`TabularEvaluator` turns one column into an :class:`~nas.evaluate.base.Evaluator`
that counts one query per lookup.
"""

from __future__ import annotations

import csv
import gzip
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from nas.evaluate.base import Cost, Score
from nas.spaces import Arch, NB201Space, get_space

DEFAULT_NB201_DIR = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "nasbench201"
).resolve()
#: the table files; the first one (accuracy) defines the row order and the arch strings
NB201_FILES = (
    "nb201_accuracy.csv.gz",
    "nb201_zero_cost_all.csv.gz",
    "nb201_latency_help.csv.gz",
)
_KEY_COLUMNS = {"index", "arch_str", "unique_str", "naslib_op_tuple"}
_EDGE_COLUMNS = {"e0_1", "e0_2", "e1_2", "e0_3", "e1_3", "e2_3"}


def _read_header(path: Path) -> list[str]:
    with gzip.open(path, "rt", newline="") as f:
        return next(csv.reader(f))


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with gzip.open(path, "rt", newline="") as f:
        reader = csv.reader(f)
        return next(reader), list(reader)


class NB201Table:
    """Every numeric column of the NAS-Bench-201 files, one value per cell.

    ``data_dir`` (default :data:`DEFAULT_NB201_DIR`) holds :data:`NB201_FILES`; only the
    accuracy file is required (``scripts/convert_nb201.py`` writes it from the official
    benchmark file). It is read at construction; the other files, where present, are read on
    the first request of one of their columns and joined by row index (their arch strings are
    checked against it). Missing values (e.g. NASWOT of degenerate cells) are NaN.
    """

    def __init__(self, data_dir: str | os.PathLike[str] | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else DEFAULT_NB201_DIR
        self.space: NB201Space = get_space("nb201")  # type: ignore[assignment]
        paths = [self.data_dir / name for name in NB201_FILES]
        if not paths[0].exists():
            raise FileNotFoundError(
                f"NAS-Bench-201 table {paths[0]} not found; set the table directory "
                "(NB201Table(data_dir=...), or --data-dir in the benchmark scripts), or write "
                "it from the official benchmark file with scripts/convert_nb201.py"
            )
        header, rows = _read_rows(paths[0])
        self.arch_strs: list[str] = [r[header.index("arch_str")] for r in rows]
        self.row_of: dict[str, int] = {s: i for i, s in enumerate(self.arch_strs)}
        self._columns: dict[str, np.ndarray] = {}
        self._store(header, rows)
        #: column name -> file that holds it (lazy files are read on first use)
        self._file_of: dict[str, Path] = {c: paths[0] for c in self._columns}
        for path in (p for p in paths[1:] if p.exists()):
            for c in _read_header(path):
                if c not in _KEY_COLUMNS and c not in self._file_of:
                    self._file_of[c] = path

    def _store(self, header: list[str], rows: list[list[str]]) -> None:
        for j, name in enumerate(header):
            if name in _KEY_COLUMNS or name in _EDGE_COLUMNS or name in self._columns:
                continue
            self._columns[name] = np.array(
                [float(r[j]) if r[j] else math.nan for r in rows], dtype=np.float64
            )

    def _load(self, path: Path) -> None:
        header, rows = _read_rows(path)
        strs = [r[header.index("arch_str")] for r in rows]
        if strs != self.arch_strs:
            raise ValueError(f"{path} does not list the cells in the order of {NB201_FILES[0]}")
        self._store(header, rows)

    @property
    def columns(self) -> list[str]:
        """Every numeric column of every file."""
        return sorted(self._file_of)

    def __len__(self) -> int:
        return len(self.arch_strs)

    def column(self, name: str) -> np.ndarray:
        """All values of column ``name``, ``[cells]`` in index order; unknown names list the valid ones."""
        if name not in self._file_of:
            raise KeyError(f"unknown NAS-Bench-201 column {name!r}; valid columns: {self.columns}")
        if name not in self._columns:
            self._load(self._file_of[name])
        return self._columns[name]

    def row(self, arch: Arch) -> int:
        """The official index of ``arch``."""
        return self.row_of[self.space.to_str(arch)]

    def value(self, arch: Arch, name: str) -> float:
        """Column ``name`` of ``arch`` (NaN where the table has no value)."""
        return float(self.column(name)[self.row(arch)])

    def constraint(self, limits: Mapping[str, float]) -> Callable[[Arch], bool]:
        """A feasibility test: ``arch`` passes when ``column <= limit`` for every item of ``limits``
        (e.g. ``{"params_cifar10_api_M": 0.8, "fpga": 3.0}``)."""
        checked = {name: self.column(name) for name in limits}

        def feasible(arch: Arch) -> bool:
            i = self.row(arch)
            return all(checked[name][i] <= limit for name, limit in limits.items())

        return feasible


class TabularEvaluator:
    """Scores cells by one column of :class:`NB201Table`; each looked-up cell costs one query.

    ``metric`` is any numeric column, e.g. ``cifar10_test_200`` (the usual CIFAR-10 test
    accuracy), ``cifar100_test_200``, ``imagenet16_test_200``, ``cifar10_valid_12``, or a proxy
    column such as ``naswot_score_cifar10``. ``source`` is recorded in each :class:`Score`
    (``tabular``, or ``proxy:<name>`` for a proxy column). Cells without a value score
    ``-inf`` (the table's degenerate cells). ``queries`` counts every lookup so far.
    """

    def __init__(
        self,
        metric: str = "cifar10_test_200",
        table: NB201Table | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        source: str = "tabular",
    ) -> None:
        self.table = table if table is not None else NB201Table(data_dir)
        self.space = self.table.space
        self.metric = metric
        self.source = source
        self.values = self.table.column(metric)
        self.queries = 0

    def evaluate(self, archs: Sequence[Arch]) -> list[Score]:
        scores = []
        for arch in archs:
            start = time.perf_counter()
            v = float(self.values[self.table.row(arch)])
            value = -math.inf if math.isnan(v) else v
            self.queries += 1
            scores.append(Score(value, self.source, Cost(time.perf_counter() - start, 1)))
        return scores
