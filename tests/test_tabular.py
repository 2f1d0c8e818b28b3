import csv
import gzip
import importlib.util
import math
from pathlib import Path

import pytest

from nas.evaluate.base import Evaluator
from nas.evaluate.tabular import DEFAULT_NB201_DIR, NB201Table, TabularEvaluator

pytestmark = pytest.mark.skipif(
    not (DEFAULT_NB201_DIR / "nb201_accuracy.csv.gz").exists(), reason="NB201 tables not present"
)

BEST_C10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def table() -> NB201Table:
    return NB201Table()


def test_counts_queries(table: NB201Table) -> None:
    ev = TabularEvaluator("cifar10_test_200", table=table)
    assert isinstance(ev, Evaluator)
    arch = table.space.from_str(BEST_C10)
    scores = ev.evaluate([arch, arch, table.space.from_str(table.arch_strs[0])])
    assert ev.queries == 3
    assert scores[0].value == pytest.approx(94.3733, abs=1e-3)
    assert scores[2].value == pytest.approx(85.8633, abs=1e-3)
    assert scores[0].source == "tabular" and scores[0].cost.queries == 1


def test_known_optima(table: NB201Table) -> None:
    assert table.column("cifar100_test_200").max() == pytest.approx(73.5133, abs=1e-3)
    assert table.column("imagenet16_test_200").max() == pytest.approx(47.3111, abs=1e-3)


def test_unknown_metric_lists_columns(table: NB201Table) -> None:
    with pytest.raises(KeyError, match="cifar10_test_200"):
        TabularEvaluator("cifar10_tset_200", table=table)


def test_missing_dir_names_path_and_argument(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"data_dir.*--data-dir"):
        NB201Table(tmp_path)


def test_joined_columns_and_constraint(table: NB201Table) -> None:
    arch = table.space.from_str(table.arch_strs[0])
    assert table.value(arch, "fpga") == pytest.approx(2.57296)
    assert table.value(arch, "zen_cifar10") == pytest.approx(184.9545593)
    fits = table.constraint({"params_cifar10_api_M": 0.2})
    assert fits(arch)  # 0.129 M params
    assert not fits(table.space.from_str(BEST_C10))


def test_proxy_gaps_score_minus_inf(table: NB201Table) -> None:
    naswot = table.column("naswot_score_cifar10")
    gap = int(next(i for i, v in enumerate(naswot) if math.isnan(v)))
    ev = TabularEvaluator("naswot_score_cifar10", table=table, source="proxy:naswot")
    (score,) = ev.evaluate([table.space.from_str(table.arch_strs[gap])])
    assert score.value == -math.inf and score.source == "proxy:naswot"


def test_convert_nb201_writes_a_table_that_loads(tmp_path: Path, table: NB201Table) -> None:
    """scripts/convert_nb201.py on a stand-in of the official API (which needs a multi-GB file)."""
    spec = importlib.util.spec_from_file_location(
        "convert_nb201", Path(__file__).resolve().parents[1] / "scripts" / "convert_nb201.py"
    )
    convert = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(convert)

    class StubAPI:
        strs = table.arch_strs[:3]

        def __len__(self) -> int:
            return len(self.strs)

        def arch(self, index: int) -> str:
            return self.strs[index]

        def get_more_info(self, index, dataset, iepoch=None, hp="12", is_random=True):
            """The keys the real API returns per dataset, values telling datasets apart."""
            assert is_random is False  # trial means
            base = (90.0 if hp == "200" else 60.0) + index
            if dataset == "cifar10-valid":  # x-valid and the CIFAR-10 test set
                return {"valid-accuracy": base, "test-accuracy": base + 0.25}
            if dataset == "cifar10":  # the CIFAR-10 test set only
                return {"test-accuracy": base + 0.5}
            return {"valid-accuracy": base - 1, "test-accuracy": base - 2, "valtest-accuracy": 0}

        def get_cost_info(self, index, dataset, hp="12"):
            return {"params": 0.1 * (index + 1), "flops": 10.0 * (index + 1), "latency": 0.01}

    convert.write_table(StubAPI(), tmp_path)
    converted = NB201Table(tmp_path)
    assert converted.arch_strs == table.arch_strs[:3]
    assert list(converted.column("cifar10_test_200")) == [90.5, 91.5, 92.5]
    assert list(converted.column("cifar10_valid_test_200")) == [90.25, 91.25, 92.25]
    assert list(converted.column("imagenet16_valid_12")) == [59.0, 60.0, 61.0]
    assert list(converted.column("cifar100_test_200")) == [88.0, 89.0, 90.0]
    assert converted.column("params_cifar10_api_M")[2] == pytest.approx(0.3)
    with pytest.raises(KeyError, match="naswot_score_cifar10"):
        converted.column("naswot_score_cifar10")  # only in the shipped zero-cost file
    with gzip.open(tmp_path / "nb201_accuracy.csv.gz", "rt") as f:
        written = next(csv.DictReader(f))
    with gzip.open(DEFAULT_NB201_DIR / "nb201_accuracy.csv.gz", "rt") as f:
        shipped = next(csv.DictReader(f))
    assert [written[e] for e in convert.EDGES] == [shipped[e] for e in convert.EDGES]

    class WrongFile(StubAPI):
        def get_more_info(self, index, dataset, iepoch=None, hp="12", is_random=True):
            return {"train-accuracy": 50.0}

    with pytest.raises(KeyError, match="no 'valid-accuracy' for dataset 'cifar10-valid'"):
        convert.write_table(WrongFile(), tmp_path / "wrong")
    assert not any((tmp_path / "wrong").iterdir())  # no partial table left behind
