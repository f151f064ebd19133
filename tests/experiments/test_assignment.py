"""Assignment agrees with GrowthBook's SDKs: their published test cases, a subset copied here.

Source: https://github.com/growthbook/growthbook/blob/0cf0a65f719576bd4772a8986a9934266a0cb76d/packages/sdk-js/test/cases.json
(commit 0cf0a65f719576bd4772a8986a9934266a0cb76d; GrowthBook's SDK is MIT-licensed). Each
case keeps its name from that file. ``getBucketRange`` cases whose weights are invalid
(a wrong count, a sum off 1) are left out: GrowthBook falls back to equal weights, and our
definitions refuse such weights before they reach assignment.
"""

from __future__ import annotations

import pytest

from tastebud.experiments.assignment import (
    ExperimentBook,
    bucket_ranges,
    choose_variation,
    gb_hash,
    in_namespace,
)
from tastebud.experiments.definition import Experiment, Namespace
from tastebud.ranking_config import RankingSettings

# "hash": [seed, value, version, expected]
HASH_CASES = [
    ("", "a", 1, 0.22),
    ("", "b", 1, 0.077),
    ("b", "a", 1, 0.946),
    ("ef", "d", 1, 0.652),
    ("asdf", "8952klfjas09ujk", 1, 0.549),
    ("", "123", 1, 0.011),
    ("", '___)((*":&', 1, 0.563),
    ("seed", "a", 2, 0.0505),
    ("seed", "b", 2, 0.2696),
    ("foo", "ab", 2, 0.2575),
    ("foo", "def", 2, 0.2019),
    ("89123klj", "8952klfjas09ujkasdf", 2, 0.124),
    ("90850943850283058242805", "123", 2, 0.7516),
    ("()**(%$##$%#$#", '___)((*":&', 2, 0.0128),
    ("abc", "def", 99, None),
]

# "getBucketRange": [name, [variations, coverage, weights], expected]
BUCKET_CASES = [
    ("normal 50/50", [0.5, 0.5], 1, [(0, 0.5), (0.5, 1)]),
    ("reduced coverage", [0.5, 0.5], 0.5, [(0, 0.25), (0.5, 0.75)]),
    ("zero coverage", [0.5, 0.5], 0, [(0, 0), (0.5, 0.5)]),
    ("4 variations", [0.25] * 4, 1, [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
    ("uneven weights", [0.4, 0.6], 1, [(0, 0.4), (0.4, 1)]),
    ("uneven weights, 3 variations", [0.2, 0.3, 0.5], 1, [(0, 0.2), (0.2, 0.5), (0.5, 1)]),
    (
        "uneven weights, reduced coverage, 3 variations",
        [0.2, 0.3, 0.5],
        0.2,
        [(0, 0.04), (0.2, 0.26), (0.5, 0.6)],
    ),
    ("negative coverage", [0.5, 0.5], -0.2, [(0, 0), (0.5, 0.5)]),
    ("coverage above 1", [0.5, 0.5], 1.5, [(0, 0.5), (0.5, 1)]),
    ("weights sum almost equals 1", [0.4, 0.5999], 1, [(0, 0.4), (0.4, 0.9999)]),
]

EVEN = [(0, 0.5), (0.5, 1)]
REDUCED = [(0, 0.25), (0.5, 0.75)]
# "chooseVariation": [name, n, ranges, expected]
CHOOSE_CASES = [
    ("even range, 0.2", 0.2, EVEN, 0),
    ("even range, 0.4", 0.4, EVEN, 0),
    ("even range, 0.6", 0.6, EVEN, 1),
    ("even range, 0.8", 0.8, EVEN, 1),
    ("even range, 0", 0, EVEN, 0),
    ("even range, 0.5", 0.5, EVEN, 1),
    ("reduced range, 0.2", 0.2, REDUCED, 0),
    ("reduced range, 0.4", 0.4, REDUCED, -1),
    ("reduced range, 0.6", 0.6, REDUCED, 1),
    ("reduced range, 0.8", 0.8, REDUCED, -1),
    ("reduced range, 0.25", 0.25, REDUCED, -1),
    ("reduced range, 0.5", 0.5, REDUCED, 1),
    ("zero range", 0.5, [(0, 0.5), (0.5, 0.5), (0.5, 1)], 2),
]

# "inNamespace": [name, id, [namespace, start, end], expected]
NAMESPACE_CASES = [
    ("user 1, namespace1, 1", "1", ("namespace1", 0, 0.4), False),
    ("user 1, namespace1, 2", "1", ("namespace1", 0.4, 1), True),
    ("user 1, namespace2, 1", "1", ("namespace2", 0, 0.4), False),
    ("user 1, namespace2, 2", "1", ("namespace2", 0.4, 1), True),
    ("user 2, namespace1, 1", "2", ("namespace1", 0, 0.4), False),
    ("user 2, namespace1, 2", "2", ("namespace1", 0.4, 1), True),
    ("user 3, namespace2, 1", "3", ("namespace2", 0, 0.4), True),
    ("user 3, namespace2, 2", "3", ("namespace2", 0.4, 1), False),
    ("user 4, namespace1, 1", "4", ("namespace1", 0, 0.4), False),
    ("user 4, namespace1, 2", "4", ("namespace1", 0.4, 1), True),
    ("user 4, namespace2, 1", "4", ("namespace2", 0, 0.4), True),
    ("user 4, namespace2, 2", "4", ("namespace2", 0.4, 1), False),
]


@pytest.mark.parametrize(("seed", "value", "version", "expected"), HASH_CASES)
def test_hash(seed: str, value: str, version: int, expected: float | None) -> None:
    assert gb_hash(seed, value, version) == expected


@pytest.mark.parametrize(("name", "weights", "coverage", "expected"), BUCKET_CASES)
def test_bucket_ranges(
    name: str, weights: list[float], coverage: float, expected: list[tuple[float, float]]
) -> None:
    ranges = bucket_ranges(weights, coverage)
    assert len(ranges) == len(expected), name
    for (start, end), (want_start, want_end) in zip(ranges, expected, strict=True):
        assert start == pytest.approx(want_start) and end == pytest.approx(want_end), name


@pytest.mark.parametrize(("name", "n", "ranges", "expected"), CHOOSE_CASES)
def test_choose_variation(
    name: str, n: float, ranges: list[tuple[float, float]], expected: int
) -> None:
    assert choose_variation(n, ranges) == expected, name


@pytest.mark.parametrize(("name", "unit", "namespace", "expected"), NAMESPACE_CASES)
def test_in_namespace(
    name: str, unit: str, namespace: tuple[str, float, float], expected: bool
) -> None:
    label, start, end = namespace
    assert in_namespace(unit, Namespace(name=label, start=start, end=end)) is expected, name


def test_the_book_assigns_as_growthbook_does() -> None:
    """The "run" cases "Uses seed with default weights/coverage" and "Experiment namespace -
    pass/fail", through the book: seed "foo" (hash v2), user "1" gets variation 1; in
    namespace ["namespace", 0.1, 1] it enters, in ["namespace", 0, 0.1] it does not."""

    def book(**changes: object) -> ExperimentBook:
        data = {
            "key": "key",
            "status": "running",
            "goals": ["click_through"],
            "variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}],
            **changes,
        }
        return ExperimentBook([Experiment.model_validate(data)], RankingSettings())

    seeded = book(seed="foo").assign("1")
    assert seeded is not None and seeded.variant == "b"
    inside = book(seed="foo", namespace={"name": "namespace", "start": 0.1, "end": 1})
    assert inside.assign("1") is not None
    outside = book(seed="foo", namespace={"name": "namespace", "start": 0, "end": 0.1})
    assert outside.assign("1") is None
