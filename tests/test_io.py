import json
import random
import warnings

import pytest

from nas.io import append_jsonl, read_jsonl


def _records(n: int, rng: random.Random) -> list[dict]:
    return [
        {"i": i, "arch": "x" * rng.randrange(1, 40), "score": rng.random(), "ok": [True, None]}
        for i in range(n)
    ]


def test_append_after_a_torn_line_keeps_every_whole_record(tmp_path) -> None:
    rng = random.Random(0)
    records = _records(12, rng)
    lines = [(json.dumps(r) + "\n").encode() for r in records]
    data = b"".join(lines)
    # a record counts as kept when its JSON text (newline or not) lies before the cut
    ends = [sum(map(len, lines[: i + 1])) for i in range(len(lines))]
    path = tmp_path / "a.jsonl"
    extra = [{"i": "new", "k": k} for k in range(2)]
    for cut in sorted({0, len(data), *(rng.randrange(len(data) + 1) for _ in range(150))}):
        path.write_bytes(data[:cut])
        whole = [r for r, end in zip(records, ends, strict=True) if end - 1 <= cut]
        torn = cut not in [0, *(e - 1 for e in ends), *ends]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert list(read_jsonl(path)) == whole
            for r in extra:
                append_jsonl(path, r)
        dropped = [str(w.message) for w in caught if "torn last line" in str(w.message)]
        assert len(dropped) == 2 * torn, (cut, dropped)  # one on read, one on repair
        if torn:
            assert str(path) in dropped[1]
            assert f"({cut - (ends[len(whole) - 1] if whole else 0)} bytes)" in dropped[1]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert list(read_jsonl(path)) == whole + extra, cut
        assert path.read_bytes().endswith(b"\n")


def test_torn_middle_line_still_raises(tmp_path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n{"a": \n{"a": 3}\n')
    with pytest.raises(ValueError, match=r"a\.jsonl:2 is not valid JSON"):
        list(read_jsonl(path))


def test_append_drops_a_garbage_or_long_torn_last_line(tmp_path) -> None:
    path = tmp_path / "a.jsonl"
    long = json.dumps({"a": "x" * 200_000})  # longer than one backward-read chunk
    for tail, dropped in [("\x00\x00\x00\n", 4), (long[:-1], len(long) - 1)]:
        path.write_text('{"a": 1}\n' + tail)
        with pytest.warns(UserWarning, match=rf"dropped a torn last line \({dropped} bytes\)"):
            append_jsonl(path, {"a": 2})
        assert list(read_jsonl(path)) == [{"a": 1}, {"a": 2}]


def test_append_to_missing_or_clean_file_warns_nothing(tmp_path) -> None:
    path = tmp_path / "sub" / "a.jsonl"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        append_jsonl(path, {"a": 1})
        append_jsonl(path, {"a": 2})
        assert list(read_jsonl(path)) == [{"a": 1}, {"a": 2}]
