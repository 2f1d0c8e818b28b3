"""A rich progress bar for the stages that spend queries (sample, evolve): queries spent of
the budget and the best score so far."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from nas.evaluate.base import Evaluator, Score
from nas.spaces import Arch


class QueryProgress:
    """``evaluator`` whose every batch of queries advances ``task`` of ``progress``."""

    def __init__(self, evaluator: Evaluator, progress: Progress, task: TaskID) -> None:
        self.evaluator = evaluator
        self.space = evaluator.space
        self.source = evaluator.source
        self.progress = progress
        self.task = task
        self.best = -math.inf

    def evaluate(self, archs: Sequence[Arch]) -> list[Score]:
        scores = self.evaluator.evaluate(archs)
        self.best = max([self.best, *(s.value for s in scores if math.isfinite(s.value))])
        self.progress.update(self.task, advance=len(scores), best=f"{self.best:.2f}")
        return scores


@contextmanager
def query_progress(
    evaluator: Evaluator, description: str, total: int, completed: int, enabled: bool = True
) -> Iterator[Evaluator]:
    """``evaluator`` behind a progress bar of ``total`` queries, ``completed`` of them spent
    already (a resumed run); the evaluator itself when not ``enabled``."""
    if not enabled:
        yield evaluator
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("queries, best {task.fields[best]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns) as progress:
        task = progress.add_task(description, total=total, completed=completed, best="-")
        yield QueryProgress(evaluator, progress, task)
