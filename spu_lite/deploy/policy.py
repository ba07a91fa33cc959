"""Consent: a node runs a job only if its own policy allows it.

What a job means to one party (its `JobView`):

    ir       the program as canonical IR text (source locations stripped: moving the
             driver's code around does not change what the program computes)
    inputs   per parameter, where it comes from as this party sees it:
               "public"                 a public array from the driver
               "driver"                 a secret the driver holds and shares
               ["mine", LOADER, LEAF]   this party's own data (leaf LEAF of LOADER's value)
               ["party", NAME]          another party's own data
               ["kept", DIGEST, I]      a secret kept at the parties: output I of the job
                                        whose digest (at this party) was DIGEST
    outputs  per result, who learns it: "driver", a party's name (reveal_to), or
             "kept" (stays secret-shared at the parties; a later job that opens it is
             checked again)
    opens    how many `reveal` ops the program has (each opens a value to every
             computing party)

`program_digest` hashes these (sha256 of canonical JSON); the same program with the
same data bindings and routing has the same digest in every run and round, so an
operator approves it once.

Policies (`policy:` in a party's cluster-file entry):

    policy: allowlist            the default: only digests approved with `spu-lite approve`
    policy: log                  run every job and log it (demos, one-organisation setups)
    policy:
      rules: [outputs-only-to-me, reads-none-of-mine]
                                 a job passes if one rule holds or its digest is approved

Denied digests are refused under every policy but `log`. A refused job is recorded as
pending in the node's state directory (approvals.py) for its operator to review.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Dict, List, Optional, Tuple

_LOC = re.compile(r' loc\("(?:[^"\\]|\\.)*"\)$', re.M)

MODES = ("allowlist", "log", "rules")
RULES = {
    "outputs-only-to-me": "every output is revealed only to this party (or stays "
                          "secret-shared) and the program opens nothing to the others",
    "reads-none-of-mine": "the program reads none of this party's loaders, nor a kept "
                          "secret made from them",
}


class JobRefused(PermissionError):
    """A party's policy does not allow the job."""


@dataclass(frozen=True)
class Policy:
    mode: str = "allowlist"
    rules: Tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"rules {', '.join(self.rules)}" if self.mode == "rules" else self.mode


def parse_policy(v, where: str) -> Policy:
    """The `policy:` value of a cluster-file entry (absent: allowlist)."""
    if v is None:
        return Policy()
    if isinstance(v, str):
        if v not in ("allowlist", "log"):
            raise ValueError(f"{where}: policy must be allowlist, log or {{rules: [...]}}, "
                             f"not {v!r}")
        return Policy(v)
    if isinstance(v, dict) and set(v) == {"rules"} and isinstance(v["rules"], list) \
            and v["rules"]:
        bad = [r for r in v["rules"] if r not in RULES]
        if bad:
            raise ValueError(f"{where}: unknown policy rule(s) {bad}; known: "
                             f"{', '.join(RULES)}")
        return Policy("rules", tuple(str(r) for r in v["rules"]))
    raise ValueError(f"{where}: policy must be allowlist, log or {{rules: [RULE, ...]}}")


def canonical_ir(text: str) -> str:
    """IR text without source locations (`loc("file.py:12")`) and trailing space."""
    return _LOC.sub("", text).strip() + "\n"


def ir_sha256(ir_text: str) -> str:
    return hashlib.sha256(canonical_ir(ir_text).encode()).hexdigest()


def program_digest(ir_text: str, inputs: List, outputs: List,
                   options: Optional[Dict] = None, ir_hash: Optional[str] = None) -> str:
    """sha256 (hex) over the canonical IR text, the input bindings and the output
    routing (see the module docstring for their forms) and the executor options.
    ir_hash: ir_sha256(ir_text) when the caller has it already (large programs)."""
    doc = {"ir": ir_hash or ir_sha256(ir_text), "inputs": inputs, "outputs": outputs,
           "options": options or {}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


@dataclass
class JobView:
    """One job as this party sees it (what its policy and its operator judge)."""
    party: str
    name: str
    ir: str
    inputs: List
    outputs: List
    options: Dict = field(default_factory=dict)
    opens: int = 0
    mine_in_kept: bool = False       # a kept input was made from this party's data
    ir_hash: Optional[str] = None    # ir_sha256(ir), if known

    @cached_property
    def digest(self) -> str:
        return program_digest(self.ir, self.inputs, self.outputs, self.options, self.ir_hash)

    def reads_mine(self) -> bool:
        return self.mine_in_kept or any(isinstance(b, list) and b[0] == "mine"
                                        for b in self.inputs)

    def record(self) -> dict:
        return {"party": self.party, "name": self.name, "digest": self.digest,
                "inputs": self.inputs, "outputs": self.outputs, "options": self.options,
                "opens": self.opens, "mine_in_kept": self.mine_in_kept,
                "ir": canonical_ir(self.ir)}


def view_of_job(node, h: dict, ir_text: str, program, ir_hash: Optional[str] = None) -> JobView:
    """The JobView of job header `h` at `node` (names from the cluster file; loader
    names of this party's inputs from node.load_origin; origins of kept secrets from
    node.kept_origin)."""
    me, names = node.name, node.spec.names
    inputs, mine_in_kept = [], False
    for d in h["inputs"]:
        if d == "p":
            inputs.append("public")
        elif d == "s":
            inputs.append("driver")
        elif d[0] == "o" and int(d[1]) == node.rank:
            inputs.append(["mine", node.load_origin.get(str(d[2]), "?"), int(d[3])])
        elif d[0] == "o":
            inputs.append(["party", names[int(d[1])]])
        else:
            origin = node.kept_origin.get(str(d[1]), {})
            inputs.append(["kept", origin.get("digest", "?"), origin.get("index", -1)])
            mine_in_kept |= me in origin.get("owners", ())
    target = h.get("reveal_to")
    keep = h.get("keep") or [None] * len(program.results)
    outputs = ["kept" if k is not None else "driver" if target is None else names[int(target)]
               for k in keep]
    opens = sum(op.name == "reveal" for op in program.walk())
    return JobView(me, program.name, ir_text, inputs, outputs, dict(h.get("options") or {}),
                   opens, mine_in_kept, ir_hash)


def owners_of(node, h: dict) -> List[str]:
    """Names of the parties whose own data flows into the job (directly, or through
    kept secrets): the outputs it keeps are made from their data."""
    names, owners = node.spec.names, set()
    for d in h["inputs"]:
        if isinstance(d, list) and d[0] == "o":
            owners.add(names[int(d[1])])
        elif isinstance(d, list) and d[0] == "k":
            owners.update(node.kept_origin.get(str(d[1]), {}).get("owners", ()))
    return sorted(owners)


def rule_holds(rule: str, view: JobView) -> Tuple[bool, str]:
    """(holds, why not)."""
    if rule == "outputs-only-to-me":
        out = [f"output {i} goes to {'the driver' if o == 'driver' else o}"
               for i, o in enumerate(view.outputs) if o not in (view.party, "kept")]
        if view.opens:
            out.append(f"it opens {view.opens} value(s) to every party")
        return not out, "; ".join(out)
    if rule == "reads-none-of-mine":
        reads = [b[1] for b in view.inputs if isinstance(b, list) and b[0] == "mine"]
        why = [f"it reads loader {', '.join(sorted(set(reads)))}"] if reads else []
        if view.mine_in_kept:
            why.append("it reads a kept secret made from this party's data")
        return not why, "; ".join(why)
    raise ValueError(f"unknown rule {rule!r}")


def decide(policy: Policy, view: JobView, decisions: Dict[str, str]) -> Tuple[bool, str]:
    """(allowed, why): `why` names the policy or rule that allowed it, or why not.
    decisions: digest -> "approve" | "deny" (the operator's, latest wins)."""
    d = view.digest
    if policy.mode == "log":
        return True, "policy log"
    said = decisions.get(d)
    if said == "deny":
        return False, f"program {d[:12]} was denied by its operator"
    if said == "approve":
        return True, "approved"
    if policy.mode == "rules":
        why = []
        for r in policy.rules:
            ok, reason = rule_holds(r, view)
            if ok:
                return True, f"rule {r}"
            why.append(f"rule {r}: {reason}")
        return False, (f"program {d[:12]} is not approved and no rule allows it ("
                       + "; ".join(why) + ")")
    return False, f"program {d[:12]} is not approved (policy allowlist)"
