"""Training benchmarks against SecretFlow SPU's figures (shared/anchors/README.md).

    python -m spu_lite.tools.bench_training [--protocol aby3 semi2k] [--repeat 3]
    spu-lite bench-train ...

- breast_cancer: the whole 10-epoch training inside MPC, compile included (SPU's figure:
  spu_lite/tools/spu_reference.py),
  with test AUC of MPC vs plaintext.
- mnist_step: one SGD step of the 784-128-64-10 network on a batch of 64, compile excluded
  median of --repeat runs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import List, Optional, Sequence

import jax
import numpy as np

from ..examples import tutorials
from ..api import jit
from .spu_reference import TRAINING_SECONDS
from ..train import Trainer, make_epoch

SPU_SECONDS = TRAINING_SECONDS


def breast_cancer(protocol: str) -> dict:
    s = tutorials.breast_cancer_mlp()
    t0 = time.perf_counter()
    p_mpc, _ = Trainer(s.loss_fn, s.optimizer, protocol=protocol).fit(
        s.params, s.x_train, s.y_train, s.epochs, s.batch_size, progress=False)
    seconds = time.perf_counter() - t0
    p_plain, _ = Trainer(s.loss_fn, s.optimizer, protocol=None).fit(
        s.params, s.x_train, s.y_train, s.epochs, s.batch_size, progress=False)
    return {"case": "breast_cancer", "protocol": protocol, "seconds": seconds,
            "auc_mpc": tutorials.auc(s, p_mpc), "auc_plain": tutorials.auc(s, p_plain)}


def mnist_step(protocol: str, repeat: int = 3) -> dict:
    s = tutorials.mnist_mlp()
    step = jit(make_epoch(s.loss_fn, s.optimizer), protocol=protocol, keep_secret=(0, 1))
    xb = s.x_train[None, :64]
    yb = s.y_train[None, :64]
    state = (s.params, s.optimizer.init(s.params))
    step(*state, xb, yb)                                  # compile + warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        step(*state, xb, yb)
        times.append(time.perf_counter() - t0)
    prof = step.last_profile.total
    return {"case": "mnist_step", "protocol": protocol, "seconds": statistics.median(times),
            "bytes": prof.bytes, "rounds": prof.rounds}


def run(protocols: Sequence[str], repeat: int = 3) -> List[dict]:
    rows = []
    for p in protocols:
        rows.append(breast_cancer(p))
        rows.append(mnist_step(p, repeat))
    for r in rows:
        spu = SPU_SECONDS[r["case"]].get(r["protocol"])
        r["spu_seconds"] = spu
        r["ratio_to_spu"] = r["seconds"] / spu if spu else None
    return rows


def format_rows(rows: List[dict]) -> str:
    out = [f"{'case':<15}{'protocol':<9}{'seconds':>9}{'spu_s':>8}{'ours/spu':>9}  details"]
    for r in rows:
        spu = f"{r['spu_seconds']:.2f}" if r["spu_seconds"] else "-"
        ratio = f"{r['ratio_to_spu']:.2f}" if r["ratio_to_spu"] else "-"
        if r["case"] == "breast_cancer":
            det = f"AUC mpc {r['auc_mpc']:.4f} / plaintext {r['auc_plain']:.4f}"
        else:
            det = f"{r['bytes'] / 1e6:.1f} MB, {r['rounds']} rounds per step"
        out.append(f"{r['case']:<15}{r['protocol']:<9}{r['seconds']:>9.3f}{spu:>8}{ratio:>9}  {det}")
    return "\n".join(out)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="spu-lite bench-train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocol", nargs="+", default=["aby3", "semi2k"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", metavar="FILE", default=None,
                    help="also write {meta, rows} as JSON to FILE (python -m "
                         "spu_lite.tools.docs_figures training FILE puts it into docs/performance.md)")
    args = ap.parse_args(argv)
    rows = run(args.protocol, args.repeat)
    print(format_rows(rows))
    if args.json:
        meta = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "repeat": args.repeat,
                "protocols": list(args.protocol), "cpus": os.cpu_count()}
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
