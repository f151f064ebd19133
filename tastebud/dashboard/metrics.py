"""What the operations page reads from the server's ``/metrics`` (Prometheus text, parsed with
``prometheus_client.parser``): sums by label, ratios and a histogram's quantiles.

The quantile is estimated from the cumulative buckets by linear interpolation inside the
bucket that holds it, as PromQL's ``histogram_quantile`` does; prometheus_client parses the
text but has no such function, so the few lines are here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Sample:
    labels: dict[str, str]
    value: float


@dataclass
class Scrape:
    """One ``/metrics`` read: samples by sample name (``_bucket``, ``_total`` suffixes kept)."""

    samples: dict[str, list[Sample]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def parse(cls, text: str) -> Scrape:
        scrape = cls()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                scrape.samples[sample.name].append(Sample(dict(sample.labels), sample.value))
        return scrape

    def by_label(self, name: str, label: str, **match: str) -> dict[str, float]:
        """``name``'s values summed per value of ``label``, over samples matching ``match``."""
        sums: dict[str, float] = defaultdict(float)
        for sample in self.samples.get(name, []):
            if all(sample.labels.get(k) == v for k, v in match.items()):
                sums[sample.labels.get(label, "")] += sample.value
        return dict(sums)

    def total(self, name: str, **match: str) -> float:
        return sum(self.by_label(name, "__none__", **match).values())

    def quantile(self, histogram: str, q: float, **match: str) -> float | None:
        """The ``q`` quantile of a histogram's observations (None with none observed)."""
        buckets = self.by_label(f"{histogram}_bucket", "le", **match)
        return bucket_quantile(q, {float(le): count for le, count in buckets.items()})


def bucket_quantile(q: float, cumulative: dict[float, float]) -> float | None:
    """``histogram_quantile`` over cumulative bucket counts keyed by upper bound."""
    bounds = sorted(cumulative)
    if not bounds or cumulative[bounds[-1]] <= 0:
        return None
    rank = q * cumulative[bounds[-1]]
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # beyond the largest finite bucket: its bound, as PromQL
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return bounds[-1]
