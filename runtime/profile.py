"""Per-op measurements of one run: calls, seconds, bytes sent and rounds."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List


@dataclass
class OpStats:
    calls: int = 0
    seconds: float = 0.0
    bytes: int = 0
    rounds: int = 0


def _add(table: Dict[str, OpStats], name: str, seconds: float, nbytes: int, rounds: int) -> None:
    s = table.setdefault(name, OpStats())
    s.calls += 1
    s.seconds += seconds
    s.bytes += nbytes
    s.rounds += rounds


class Profile:
    """ops: per op name, what the op itself cost (an op with blocks -- for, while, cond --
    only its own part: its body's ops are recorded themselves, so `total` counts
    everything once). blocks: per op-with-blocks name, its inclusive cost (body included;
    not part of `total`)."""

    def __init__(self):
        self.ops: Dict[str, OpStats] = OrderedDict()
        self.blocks: Dict[str, OpStats] = OrderedDict()
        # correlations made by the parties themselves (semi2k_ot) during the job: seconds
        # (already inside the ops' seconds), bytes sent and messages (counted apart from
        # the ops' bytes and rounds); calls = 0 when the protocol makes none
        self.offline = OpStats()

    def record_block(self, name: str, seconds: float, nbytes: int, rounds: int) -> None:
        _add(self.blocks, name, seconds, nbytes, rounds)

    def record(self, name: str, seconds: float, nbytes: int, rounds: int) -> None:
        _add(self.ops, name, seconds, nbytes, rounds)

    @property
    def total(self) -> OpStats:
        t = OpStats()
        for s in self.ops.values():
            t.calls += s.calls
            t.seconds += s.seconds
            t.bytes += s.bytes
            t.rounds += s.rounds
        return t

    @staticmethod
    def merge_max(profiles: List["Profile"]) -> "Profile":
        """Combine parties' profiles: max time/bytes/rounds per op (the critical party)."""
        out = Profile()
        for p in profiles:
            for mine, theirs in ((out.ops, p.ops), (out.blocks, getattr(p, "blocks", {}))):
                for name, s in theirs.items():
                    o = mine.setdefault(name, OpStats())
                    o.calls = max(o.calls, s.calls)
                    o.seconds = max(o.seconds, s.seconds)
                    o.bytes = max(o.bytes, s.bytes)
                    o.rounds = max(o.rounds, s.rounds)
            off = getattr(p, "offline", None)
            if off is not None:
                for f in ("calls", "seconds", "bytes", "rounds"):
                    setattr(out.offline, f, max(getattr(out.offline, f), getattr(off, f)))
        return out

    def table(self) -> str:
        rows = sorted(self.ops.items(), key=lambda kv: -kv[1].seconds)
        lines = [f"{'op':<22}{'calls':>7}{'seconds':>10}{'bytes':>14}{'rounds':>8}"]
        for name, s in rows:
            lines.append(f"{name:<22}{s.calls:>7}{s.seconds:>10.4f}{s.bytes:>14}{s.rounds:>8}")
        t = self.total
        lines.append(f"{'total':<22}{t.calls:>7}{t.seconds:>10.4f}{t.bytes:>14}{t.rounds:>8}")
        o = self.offline
        if o.calls:
            lines.append(f"{'offline (in total s)':<22}{o.calls:>7}{o.seconds:>10.4f}{o.bytes:>14}"
                         f"{o.rounds:>8}")
        return "\n".join(lines)

    def __str__(self):
        return self.table()
