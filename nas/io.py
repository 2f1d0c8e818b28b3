"""Crash-safe result files: atomic JSON writes and append-only JSONL archives."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO


def digest(obj: Any) -> str:
    """A short stable hash of a JSON-able value."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


@contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """A file opened in ``mode`` that becomes ``path`` when the block ends: written to a
    temporary name in the same directory, fsynced, then renamed, so readers (and a run
    killed mid-write) see the old file or the new one, never half. An error discards it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (:func:`atomic_writer`)."""
    with atomic_writer(path) as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path) as f:
        return json.load(f)


def _line_start(f: BinaryIO, end: int, chunk: int = 1 << 16) -> int:
    """Offset just past the last newline of ``f`` before ``end`` (0 when there is none)."""
    pos = end
    while pos > 0:
        step = min(chunk, pos)
        pos -= step
        f.seek(pos)
        i = f.read(step).rfind(b"\n")
        if i >= 0:
            return pos + i + 1
    return 0


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _repair_tail(f: BinaryIO, path: Path) -> None:
    """Make the last line of ``f`` (opened ``a+b``) a whole one before an append.

    A last line that is not valid JSON (a run killed mid-write) is cut off with a warning;
    a valid one that only lacks its newline gets it. So the next record starts a line.
    """
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return
    f.seek(size - 1)
    terminated = f.read(1) == b"\n"
    start = _line_start(f, size - terminated)
    f.seek(start)
    tail = f.read()
    whole = _is_json(tail) if tail.strip() else terminated  # a blank line counts once ended
    if whole:
        if not terminated:
            f.write(b"\n")
        return
    f.truncate(start)
    warnings.warn(f"{path}: dropped a torn last line ({size - start} bytes)", stacklevel=3)


def append_jsonl(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Append one JSON line and fsync it, so a killed run keeps every finished record.

    A torn last line left by a killed run is dropped first (with a warning), so the new
    record is never glued to it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record) + "\n").encode()
    with open(path, "a+b") as f:
        _repair_tail(f, path)
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Records of a JSONL file; a torn last line (a run killed mid-write) is skipped with a
    warning."""
    path = Path(path)
    if not path.exists():
        return
    lines = path.read_bytes().split(b"\n")
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield json.loads(line.decode())  # a line that is not UTF-8 is not JSON either
        except (json.JSONDecodeError, UnicodeDecodeError):
            if n >= len(lines) - 2:  # only the last line may be torn
                warnings.warn(
                    f"{path}:{n + 1}: skipped a torn last line ({len(line)} bytes)",
                    stacklevel=2,
                )
                return
            raise ValueError(f"{path}:{n + 1} is not valid JSON") from None
