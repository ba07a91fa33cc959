"""Per-round records of a federation: who took part, timings, metrics, epsilon. The
History holding them is spu_lite.history.History, the Trainer's too.

    hist = federation.fit(rounds=20, evaluate_every=2)
    hist["accuracy"]                 # values at the evaluated rounds
    hist.series("accuracy")          # (rounds, values), for plotting
    hist.seconds_per_round()         # mean wall-clock seconds of a round
    hist.plot("accuracy", label="secure")
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..history import History

__all__ = ["History", "RoundRecord"]


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
