"""The record of a run, step by step: the epochs of a Trainer, the rounds of a
federation (spu_lite.fl). One class for both, so that plots and tables read alike.

    params, hist = Trainer(loss_fn, optax.sgd(0.1)).fit(params, x, y, epochs=5, batch_size=32)
    hist["loss"]                     # values at the recorded steps
    hist.series("accuracy")          # (steps, values), for plotting
    hist.seconds_per_round()         # mean wall-clock seconds of a step
    hist.plot("loss", label="aby3")

A record is a dataclass with the step number as the attribute named by `unit`
("epoch" or "round"), `metrics` and `seconds` (dicts); a federation's records add who
took part and epsilon (spu_lite/fl/history.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np


@dataclass
class EpochRecord:
    """One epoch of a Trainer: metrics holds the loss and whatever `evaluate` returned;
    seconds: 'total'."""
    epoch: int
    metrics: Dict[str, float] = field(default_factory=dict)
    seconds: Dict[str, float] = field(default_factory=dict)


class History:
    """The records of every step run so far."""

    def __init__(self, label: str = "", unit: str = "round"):
        self.label = label
        self.unit = unit
        self.records: List = []

    def append(self, record) -> None:
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def series(self, key: str) -> Tuple[List[int], List[float]]:
        """(steps, values) of a metric, a timing ('seconds.total') or 'epsilon'."""
        steps, values = [], []
        for r in self.records:
            if key == "epsilon":
                v = getattr(r, "epsilon", None)
            elif key.startswith("seconds."):
                v = r.seconds.get(key.split(".", 1)[1])
            else:
                v = r.metrics.get(key)
            if v is not None:
                steps.append(getattr(r, self.unit))
                values.append(v)
        return steps, values

    def __getitem__(self, key: str) -> List[float]:
        return self.series(key)[1]

    @property
    def last_metrics(self) -> Dict[str, float]:
        """Metrics of the last step that has any."""
        for r in reversed(self.records):
            if r.metrics:
                return dict(r.metrics)
        return {}

    def seconds_per_round(self, part: str = "total", skip_first: bool = True) -> float:
        """Mean seconds of `part` per step (the first step, which compiles, is skipped
        when there are others)."""
        recs = self.records[1:] if skip_first and len(self.records) > 1 else self.records
        return float(np.mean([r.seconds.get(part, np.nan) for r in recs])) if recs else float("nan")

    def to_dict(self) -> Dict:
        return {"label": self.label, "unit": self.unit, "records": [asdict(r) for r in self.records]}

    def plot(self, metric: Union[str, Sequence[str]] = "loss", ax=None,
             label: Optional[str] = None, **kw):
        """Plot one metric (or several) against the step number (matplotlib)."""
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
        ax = ax or plt.gca()
        metrics = [metric] if isinstance(metric, str) else list(metric)
        name = label or self.label
        for m in metrics:
            xs, ys = self.series(m)
            text = f"{name} {m}" if name and len(metrics) > 1 else (name or m)
            ax.plot(xs, ys, marker="o", markersize=3, label=text, **kw)
        ax.set_xlabel(self.unit)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(metrics) == 1:
            ax.set_ylabel(metrics[0])
        ax.legend()
        return ax

    def __repr__(self):
        return f"History({self.label!r}, {len(self.records)} {self.unit}s, last={self.last_metrics})"
