"""Property-based tests: every space's codecs and the archive reader on arbitrary input.

A string that is not an architecture must raise ``ArchError`` (a ``ValueError``) naming
what is wrong, never another exception; an archive file with garbage lines must raise a
``ValueError`` naming the file (or, for a torn last line, skip it with a warning).
"""

import json
import random
import re
import warnings

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nas.evaluate.base import Cost, Score
from nas.evolution.archive import Archive
from nas.spaces import ArchError, available_spaces, get_space

SPACES = list(available_spaces())
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def parses_or_rejects(space, text: str) -> None:
    """``from_str(text)`` returns an arch that round-trips, or raises ``ArchError``."""
    try:
        arch = space.from_str(text)
    except ArchError:
        return
    assert space.from_str(space.to_str(arch)) == arch


@pytest.mark.parametrize("name", SPACES)
@FUZZ
@given(seed=seeds)
def test_sampled_archs_round_trip_through_every_codec(name, seed):
    space = get_space(name)
    arch = space.sample(random.Random(seed))
    assert space.from_str(space.to_str(arch)) == arch
    assert space.from_json(json.loads(json.dumps(space.to_json(arch)))) == arch
    assert space.derive(space.one_hot(arch)) == arch


@pytest.mark.parametrize("name", SPACES)
@FUZZ
@given(text=st.text(max_size=300))
def test_random_strings_are_rejected_with_arch_error(name, text):
    parses_or_rejects(get_space(name), text)


@pytest.mark.parametrize("name", SPACES)
@FUZZ
@given(
    seed=seeds,
    edits=st.lists(
        st.tuples(st.sampled_from("rid"), st.integers(0, 10**4), st.characters()), max_size=6
    ),
)
@example(seed=0, edits=[("r", 0, "\ud800")])  # a lone surrogate: Python cannot parse it
def test_edited_arch_strings_parse_or_are_rejected_with_arch_error(name, seed, edits):
    """Near misses of valid strings (characters replaced, inserted, deleted)."""
    space = get_space(name)
    text = space.to_str(space.sample(random.Random(seed)))
    for kind, pos, char in edits:
        i = pos % (len(text) + 1)
        if kind == "r" and i < len(text):
            text = text[:i] + char + text[i + 1 :]
        elif kind == "i":
            text = text[:i] + char + text[i:]
        elif kind == "d":
            text = text[:i] + text[i + 1 :]
    parses_or_rejects(space, text)


def scored_archive(tmp_path_factory, seed: int):
    """``(space, path, archive)``: an NB201 archive file of up to 5 scored random archs."""
    space = get_space("nb201")
    rng = random.Random(seed)
    path = tmp_path_factory.mktemp("archive") / "archive.jsonl"
    archive = Archive(space, path)
    for arch in {space.sample(rng) for _ in range(5)}:
        archive.add(arch, Score(rng.random(), "oneshot", Cost(0.1)), "sample")
    return space, path, archive


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@FUZZ
@given(
    seed=seeds,
    garbage=st.one_of(
        json_values.map(json.dumps), st.text(max_size=80).filter(lambda t: "\n" not in t)
    ),
    at=st.integers(0, 5),
)
@example(seed=0, garbage="\x1f", at=0)  # blank to str.strip, not to a JSON reader
def test_archive_with_a_garbage_line_names_the_file(tmp_path_factory, seed, garbage, at):
    space, path, archive = scored_archive(tmp_path_factory, seed)
    lines = path.read_text().splitlines()
    lines.insert(at % len(lines), garbage)  # never last: a torn last line is another case
    path.write_text("\n".join(lines) + "\n")
    if not garbage.encode().strip():  # ASCII whitespace only (not str.strip's "\x1f"): blank
        assert len(Archive(space, path).entries) == len(archive.entries)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=re.escape(str(path))):
            Archive(space, path)


@FUZZ
@given(seed=seeds, cut=st.floats(0, 1), tail=st.binary(max_size=40))
@example(seed=0, cut=0.25, tail=b'\x80"}')  # closes the torn string with a byte that is not UTF-8
def test_archive_torn_or_garbage_tail_keeps_every_whole_record(tmp_path_factory, seed, cut, tail):
    space, path, archive = scored_archive(tmp_path_factory, seed)
    data = path.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1  # the last record's first byte
    torn = data[: last + int(cut * (len(data) - last))] + tail.replace(b"\n", b"")
    path.write_bytes(torn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            kept = Archive(space, path).entries
        except ValueError as err:  # a last line that is whole JSON but no record is an error
            assert str(path) in str(err)
            json.loads(torn.rsplit(b"\n", 1)[-1])
            return
    whole = len(archive.entries) - 1
    assert [e.arch for e in kept][:whole] == [e.arch for e in archive.entries][:whole]
    assert len(kept) in (whole, whole + 1)
