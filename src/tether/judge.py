"""How a finished run is judged, one way for ``tether run`` and ``tether report``: its summary
document, with every threshold's result (``thresholds``) and a sentence for each gate and
threshold that failed (``gate_failures``, the gates first). The same results judged by either
command give the same verdict, and so the same exit status
(:func:`tether.commands.options.exit_status`). Pure: a summary in, a document out."""

from __future__ import annotations

from collections.abc import Iterable

from tether.document import SummaryDocument
from tether.gates import Gates, failures
from tether.metrics.summary import Summary
from tether.thresholds import Threshold, evaluate
from tether.thresholds import failures as threshold_failures

__all__ = ["judged"]


def judged(summary: Summary, gates: Gates, thresholds: Iterable[Threshold]) -> SummaryDocument:
    """The summary's document, judged by ``gates`` and ``thresholds``."""
    doc = summary.to_dict()
    doc["thresholds"] = evaluate(list(thresholds), summary)
    doc["gate_failures"] = failures(gates, doc) + threshold_failures(
        doc["thresholds"], doc["requests"]
    )
    return doc
