"""The archive: every evaluated arch, one JSON line each, appended as it is produced.

Line format (DESIGN.md): ``{"arch": <space string>, "score": float, "source": str,
"cost": {"seconds": float, "queries": int}, "stage": str}``, and ``"components": {name:
float}`` for a combined score (:mod:`nas.evaluate.scorer`). An archive holds one entry per
(arch, ``source``): another evaluator may score an arch again (a proxy pre-screen, then
one-shot; one-shot, then trained), the same one never does. Opening an existing file reads
its records back, so a search can resume from it.

An archive may belong to a *producer* (``{"checkpoint", "scorer"}``: which supernet and
scorer settings made the scores): its records then carry ``"producer"``, and records of
another producer (an earlier supernet, other one-shot settings) stay in the file but are not
served, so no stale score is reused and none is lost.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.evaluate.base import Cost, Score
from nas.io import append_jsonl, read_jsonl
from nas.spaces import Arch, SearchSpace


def finite(entries: Sequence[Entry]) -> list[Entry]:
    """The entries with a finite score: the only parents and predictor targets of a search."""
    return [e for e in entries if math.isfinite(e.score.value)]


def ranked(value: float) -> float:
    """A score value for ranking: NaN counts as ``-inf`` (worst)."""
    return -math.inf if math.isnan(value) else value


@dataclass(frozen=True)
class Entry:
    """One evaluated arch: its score and the search stage that asked for it."""

    arch: Arch
    score: Score
    stage: str

    @property
    def rank(self) -> float:
        """The score value to rank by (NaN counts as ``-inf``)."""
        return ranked(self.score.value)

    def to_json(self, space: SearchSpace) -> dict[str, Any]:
        return {"arch": space.to_str(self.arch), **self.score.to_json(), "stage": self.stage}

    @classmethod
    def from_json(cls, space: SearchSpace, obj: dict[str, Any]) -> Entry:
        try:
            cost = Cost(**obj["cost"])
            components = obj.get("components")
            score = Score(float(obj["score"]), str(obj["source"]), cost, components)
            return cls(space.from_str(obj["arch"]), score, str(obj["stage"]))
        except (KeyError, TypeError) as e:
            raise ValueError(
                f"archive record {obj!r} lacks a field of arch/score/source/cost/stage: {e}"
            ) from None


class Archive:
    """Evaluated archs of ``space`` in evaluation order, mirrored to ``path`` (JSONL) when given.

    Opening an existing ``path`` loads its records (those of ``producer``); :meth:`add`
    appends and fsyncs one line. An arch is stored at most once per score source.
    """

    def __init__(
        self,
        space: SearchSpace,
        path: str | os.PathLike[str] | None = None,
        producer: dict[str, str] | None = None,
    ) -> None:
        self.space = space
        self.path = Path(path) if path is not None else None
        self.producer = producer
        self.entries: list[Entry] = []
        self._by_key: dict[tuple[Arch, str], Entry] = {}
        self._archs: set[Arch] = set()
        if self.path is not None:
            for n, obj in enumerate(read_jsonl(self.path), start=1):
                try:
                    entry = Entry.from_json(space, obj)
                except ValueError as err:  # ArchError included
                    raise ValueError(f"{self.path}: record {n}: {err}") from None
                if obj.get("producer") != producer:  # kept in the file, not served
                    continue
                if self.has(entry.arch, entry.score.source):
                    raise ValueError(
                        f"{self.path}:{n}: {obj['arch']} is archived twice with source "
                        f"{entry.score.source!r}"
                    )
                self._remember(entry)

    def _remember(self, entry: Entry) -> None:
        self.entries.append(entry)
        self._by_key[entry.arch, entry.score.source] = entry
        self._archs.add(entry.arch)

    def add(self, arch: Arch, score: Score, stage: str) -> Entry:
        """Store a new evaluation (and append it to the file); an arch already archived with
        ``score.source`` raises."""
        if self.has(arch, score.source):
            raise ValueError(
                f"{self.space.to_str(arch)} is already archived with source {score.source!r}"
            )
        entry = Entry(arch, score, stage)
        if self.path is not None:
            record = entry.to_json(self.space)
            append_jsonl(
                self.path,
                record if self.producer is None else {**record, "producer": self.producer},
            )
        self._remember(entry)
        return entry

    def get(self, arch: Arch, source: str) -> Entry | None:
        """The entry of ``arch`` scored by ``source``, if archived."""
        return self._by_key.get((arch, source))

    def has(self, arch: Arch, source: str) -> bool:
        """Whether ``arch`` is archived with a score from ``source``."""
        return (arch, source) in self._by_key

    def __contains__(self, arch: object) -> bool:
        """Whether ``arch`` is archived with a score from any source."""
        return arch in self._archs

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def best(self, source: str | None = None) -> Entry:
        """The highest-scoring entry (of ``source``, when given; the earliest among ties;
        NaN ranks as ``-inf``)."""
        entries = [e for e in self.entries if source is None or e.score.source == source]
        if not entries:
            raise ValueError("the archive is empty" + (f" of source {source!r}" if source else ""))
        return max(entries, key=lambda e: e.rank)

    @property
    def queries(self) -> int:
        """Evaluator queries spent on the archived scores."""
        return sum(e.score.cost.queries for e in self.entries)
