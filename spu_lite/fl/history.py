"""Per-round records of a federation: who took part, timings, metrics, epsilon.

    hist = federation.fit(rounds=20, evaluate_every=2)
    hist["accuracy"]                 # values at the evaluated rounds
    hist.series("accuracy")          # (rounds, values), for plotting
    hist.seconds_per_round()         # mean wall-clock seconds of a round
    hist.plot("accuracy", label="secure")
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np


@dataclass
class RoundRecord:
    """One round. seconds: 'local' (training + sharing, all owners in parallel),
    'aggregate' (MPC), 'evaluate', 'total'; metrics: what evaluator_fn returned
    (empty on rounds that were not evaluated)."""
    round: int
    participants: List[str]
    dropped: Dict[str, str] = field(default_factory=dict)
    seconds: Dict[str, float] = field(default_factory=dict)
    metrics: Dict[str, float] = field(default_factory=dict)
    epsilon: Optional[float] = None


class History:
    """The records of every round run so far (a federation keeps appending)."""

    def __init__(self, label: str = ""):
        self.label = label
        self.records: List[RoundRecord] = []

    def append(self, record: RoundRecord) -> None:
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def series(self, key: str) -> Tuple[List[int], List[float]]:
        """(rounds, values) of a metric, a timing ('seconds.total') or 'epsilon'."""
        rounds, values = [], []
        for r in self.records:
            if key == "epsilon":
                v = r.epsilon
            elif key.startswith("seconds."):
                v = r.seconds.get(key.split(".", 1)[1])
            else:
                v = r.metrics.get(key)
            if v is not None:
                rounds.append(r.round)
                values.append(v)
        return rounds, values

    def __getitem__(self, key: str) -> List[float]:
        return self.series(key)[1]

    @property
    def last_metrics(self) -> Dict[str, float]:
        """Metrics of the last evaluated round."""
        for r in reversed(self.records):
            if r.metrics:
                return dict(r.metrics)
        return {}

    def seconds_per_round(self, part: str = "total", skip_first: bool = True) -> float:
        """Mean seconds of `part` per round (the first round, which compiles, is
        skipped when there are others)."""
        recs = self.records[1:] if skip_first and len(self.records) > 1 else self.records
        return float(np.mean([r.seconds.get(part, np.nan) for r in recs])) if recs else float("nan")

    def to_dict(self) -> Dict:
        return {"label": self.label, "records": [asdict(r) for r in self.records]}

    def plot(self, metric: str = "accuracy", ax=None, label: Optional[str] = None, **kw):
        """Plot a metric against the round number (matplotlib)."""
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
        ax = ax or plt.gca()
        xs, ys = self.series(metric)
        ax.plot(xs, ys, marker="o", markersize=3, label=label or self.label or None, **kw)
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        if label or self.label:
            ax.legend()
        return ax

    def __repr__(self):
        return f"History({self.label!r}, {len(self.records)} rounds, last={self.last_metrics})"
