"""Offline evaluation: protocols (splitting), metrics, relevance and reports.

Typical use::

    split = make_splitter("user-temporal", fraction=0.2)(interactions)
    relevance = relevance_matrix(split.test, user_ids, item_vocabulary, min_rating=4)
    metrics = evaluate_rankings(recommended, relevance.matrix, ks=(10,), ...)
    report = EvaluationReport(protocol="user-temporal", options=dict(split.options))
    report.add_model("als", metrics, {"fit": 1.2})
    report.to_json("report.json")

Layer (docs/architecture.md): may import ``data``, ``stores`` and the core; never ``models``
(it scores lists, whoever made them) or anything above.
"""

from tastebud.evaluation.evaluate import evaluate_rankings
from tastebud.evaluation.metrics.coverage import FactorCoverage, factor_coverage
from tastebud.evaluation.relevance import RelevanceMatrix, relevance_matrix
from tastebud.evaluation.report import EvaluationReport, summarize_interactions
from tastebud.evaluation.splitting import (
    PROTOCOLS,
    ConfiguredSplitter,
    Split,
    make_splitter,
    time_status,
)

__all__ = [
    "PROTOCOLS",
    "ConfiguredSplitter",
    "EvaluationReport",
    "FactorCoverage",
    "RelevanceMatrix",
    "Split",
    "evaluate_rankings",
    "factor_coverage",
    "make_splitter",
    "relevance_matrix",
    "summarize_interactions",
    "time_status",
]
