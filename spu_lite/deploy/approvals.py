"""Pending programs and the operator's decisions, in a node's state directory.

    STATE_DIR/pending/DIGEST.json   a program the node refused (its JobView record,
                                    first and last time seen, how often)
    STATE_DIR/decisions.jsonl       the operator's decisions, appended (latest wins):
                                    {"time", "digest", "decision": "approve" | "deny",
                                     "program", "reads", "outputs"}

The node writes pending files and reads decisions before every job (so an approval
takes effect at the next attempt, no restart). `spu-lite approve` reads pending files
and appends decisions; see `show` for what it prints.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from typing import Dict, List, Optional

from spu_lite.compiler.ir import parse_program
from ..tools.cost import dry_run
from ..two_party import correlation_counts, offline_bytes, online_cost

from .joblog import open_private, utc_now
from .policy import RULES, JobView, canonical_ir, rule_holds


class ApprovalStore:
    def __init__(self, state_dir: str):
        self.dir = state_dir
        self.pending_dir = os.path.join(state_dir, "pending")
        self.decisions_path = os.path.join(state_dir, "decisions.jsonl")
        self._cache = (None, {})

    # -- the node's side ----------------------------------------------------------------
    def decisions(self) -> Dict[str, str]:
        """digest -> latest decision; re-read only when the file changed."""
        try:
            st = os.stat(self.decisions_path)
        except FileNotFoundError:
            return {}
        key = (st.st_mtime_ns, st.st_size)
        if self._cache[0] != key:
            out = {}
            with open(self.decisions_path) as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                        out[str(rec["digest"])] = str(rec["decision"])
                    except (ValueError, KeyError, TypeError):
                        continue               # a torn last line while being written
            self._cache = (key, out)
        return self._cache[1]

    def add_pending(self, view: JobView, job: int, reason: str) -> None:
        d = view.digest
        path = os.path.join(self.pending_dir, f"{d}.json")
        rec = self._read(path) or dict(view.record(), first_seen=utc_now(), attempts=0)
        rec.update(last_seen=utc_now(), last_job=job, attempts=rec["attempts"] + 1,
                   reason=reason)
        tmp = path + ".tmp"
        with open_private(tmp, os.O_WRONLY | os.O_TRUNC) as f:
            json.dump(rec, f, indent=1)
        os.replace(tmp, path)

    # -- the operator's side --------------------------------------------------------------
    def pending(self) -> List[dict]:
        if not os.path.isdir(self.pending_dir):
            return []
        recs = [self._read(os.path.join(self.pending_dir, f))
                for f in sorted(os.listdir(self.pending_dir)) if f.endswith(".json")]
        return sorted((r for r in recs if r), key=lambda r: r["first_seen"])

    def find(self, prefix: str) -> dict:
        hits = [r for r in self.pending() if r["digest"].startswith(prefix)]
        if len(hits) != 1:
            raise ValueError(f"{'no' if not hits else 'more than one'} pending program "
                             f"whose digest starts with {prefix!r} in {self.pending_dir}")
        return hits[0]

    def record(self, rec: dict, decision: str) -> None:
        line = {"time": utc_now(), "digest": rec["digest"], "decision": decision,
                "program": rec["name"], "reads": reads_of_mine(rec),
                "outputs": rec["outputs"]}
        with open_private(self.decisions_path, os.O_WRONLY | os.O_APPEND) as f:
            f.write(json.dumps(line) + "\n")
        os.remove(os.path.join(self.pending_dir, f"{rec['digest']}.json"))

    @staticmethod
    def _read(path: str) -> Optional[dict]:
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None


def reads_of_mine(rec: dict) -> List[str]:
    out = [f"loader {b[1]!r} (leaf {b[2]})" for b in rec["inputs"]
           if isinstance(b, list) and b[0] == "mine"]
    if rec.get("mine_in_kept"):
        out.append("a kept secret made from this party's data")
    return out


def _input_line(b, t) -> str:
    if b == "public":
        return f"a public array from the driver  {t}"
    if b == "driver":
        return f"a secret the driver holds  {t}"
    if b[0] == "mine":
        return f"YOUR loader {b[1]!r} (leaf {b[2]})  {t}"
    if b[0] == "party":
        return f"{b[1]}'s own data  {t}"
    return f"a secret kept at the parties (output {b[2]} of program {str(b[1])[:12]})  {t}"


def _output_line(o, t, me: str) -> str:
    if o == "driver":
        return f"revealed to the DRIVER  {t}"
    if o == "kept":
        return f"stays secret-shared at the parties  {t}"
    return f"revealed to {'YOU' if o == me else o} only  {t}"


def show(rec: dict, protocol: str, with_ir: bool = False, with_cost: bool = True) -> str:
    """A pending program in human terms."""
    program = parse_program(rec["ir"])
    me = rec["party"]
    lines = [f"program {rec['digest'][:12]}  ({program.name}, digest {rec['digest']})",
             f"  refused {rec['attempts']} time(s), first {rec['first_seen']}, last "
             f"{rec['last_seen']}: {rec['reason']}",
             f"  reads from {me}: " + (", ".join(reads_of_mine(rec)) or "nothing"),
             "  inputs:"]
    lines += [f"    {i}: {_input_line(b, p.type)}"
              for i, (b, p) in enumerate(zip(rec["inputs"], program.params))]
    lines.append("  outputs:")
    lines += [f"    {i}: {_output_line(o, r.type, me)}"
              for i, (o, r) in enumerate(zip(rec["outputs"], program.results))]
    if rec.get("opens"):
        lines.append(f"  opens {rec['opens']} value(s) to every computing party (reveal ops)")
    ops = Counter(op.name for op in program.walk())
    lines.append("  ops: " + (", ".join(f"{n} x{c}" for n, c in ops.most_common())
                             or "none (it returns its inputs as they are)"))
    if rec.get("options"):
        lines.append(f"  options: {rec['options']}")
    if with_cost and protocol != "ref2k":
        two_party = protocol == "semi2k_ot"         # online as semi2k; OT counted apart
        rep = online_cost(program) if two_party else dry_run(program, protocol)
        lines.append(f"  cost ({protocol}, dry run): {rep.rounds} rounds, "
                     f"{max(rep.party_bytes):,} bytes sent by the busiest party")
        if two_party:
            counts = correlation_counts(program)
            lines.append(f"  offline (correlations by OT with the other party): about "
                         f"{sum(offline_bytes(k, n, program.field) for k, n in counts.items()):,}"
                         f" bytes sent by the busier party")
    for r in RULES:
        ok, _ = rule_holds(r, _view(rec))
        lines.append(f"  rule {r}: {'holds' if ok else 'does not hold'}")
    if with_ir:
        lines += ["", canonical_ir(rec["ir"]).rstrip()]
    return "\n".join(lines)


def _view(rec: dict) -> JobView:
    return JobView(rec["party"], rec["name"], rec["ir"], rec["inputs"], rec["outputs"],
                   rec.get("options") or {}, rec.get("opens", 0), rec.get("mine_in_kept", False))


def summary_line(rec: dict) -> str:
    reads = ", ".join(reads_of_mine(rec)) or "none of your data"
    to = sorted({o for o in rec["outputs"]})
    return (f"{rec['digest'][:12]}  {rec['name']:<16} reads {reads}; outputs to "
            f"{', '.join(to)}; refused {rec['attempts']}x, last {rec['last_seen']}")
