"""Workloads on emulated networks, each measured next to the cost model's prediction.

    predicted = compute + rounds x latency + bytes / bandwidth

rounds and bytes come from `spu-lite cost` (cost.dry_run: a dry run of the compiled
program; the protocols are data-oblivious, so they are exact), for the busiest
computing party. compute is the same workload measured on the same kind of cluster
without emulation (loopback / in-process) in the same run. latency is what one
round costs: rtt/2 for aby3 (the parties send at the same time; each message takes
one way), a full rtt for semi2k (P_0 asks the dealer for each correlation and waits
for the answer: request and reply are one round trip on the critical path).
bandwidth is each party's uplink (runtime.link.LinkModel).

Workloads (names for --workloads): ops (mul, less, relu at n = 65,536, matmul 256),
breast_cancer (10 training epochs, one job each), mnist_step (one SGD step of
784-128-64-10 on 64 samples), gpt2_tiny (first token, per further token),
gpt2_small (the same on GPT-2 small: 124M parameters; heavy).

run_workloads() is shared by `spu-lite bench --net` (in-process cluster with emulated
links) and `python -m spu_lite.deploy.bench --net` (node processes).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from spu_lite.runtime.link import PRESETS, LinkModel

from . import cost
from ..examples import tutorials
from ..api import jit
from ..train import batches, make_epoch

DEFAULT_LINKS = ("lan", "wan")
DEFAULT_WORKLOADS = ("ops", "breast_cancer", "mnist_step", "gpt2_tiny")
ROUND_LATENCY = {"aby3": 0.5, "semi2k": 1.0, "ref2k": 0.0}    # x rtt per round


@dataclass
class Item:
    """One row: `calls` calls of jf(*args, **kwargs), timed together."""
    name: str
    jf: object
    args: tuple
    kwargs: dict
    calls: int = 1
    repeat: int = 3


def _ops(protocol: str, rng) -> List[Item]:
    import jax
    n, k = 65_536, 256
    v = lambda: rng.uniform(-4, 4, n).astype(np.float32)
    m = lambda: rng.uniform(-1, 1, (k, k)).astype(np.float32)
    fns = {"mul": (lambda x, y: x * y, (v(), v())), "less": (lambda x, y: x < y, (v(), v())),
           "relu": (jax.nn.relu, (v(),)), "matmul_256": (lambda x, y: x @ y, (m(), m()))}
    return [Item(name, jit(fn, protocol=protocol, check=False), args, {}, repeat=5)
            for name, (fn, args) in fns.items()]


def _epoch_item(name: str, s, protocol: str, n: Optional[int], calls: int, repeat: int) -> Item:
    xb, yb = batches(s.x_train, s.batch_size), batches(s.y_train, s.batch_size)
    if n is not None:
        xb, yb = xb[:n], yb[:n]
    jf = jit(make_epoch(s.loss_fn, s.optimizer), protocol=protocol, keep_secret=(0, 1),
             check=False)
    return Item(name, jf, (s.params, s.optimizer.init(s.params), xb, yb), {}, calls, repeat)


def _gpt2(config: str, protocol: str) -> List[Item]:
    from ..models.gpt2 import CONFIGS, private_generate, random_params
    cfg = CONFIGS[config]
    params = random_params(cfg, 0)
    prompt = np.random.default_rng(1).integers(0, cfg.vocab_size, 16).astype(np.int32)
    gen = private_generate(cfg, protocol)
    return [Item(f"gpt2_{config} first token", gen, (params, prompt), {"n_new": 1}, repeat=1),
            Item(f"gpt2_{config} 3 tokens", gen, (params, prompt), {"n_new": 3}, repeat=1)]


def workloads(protocol: str, names: Sequence[str]) -> List[Item]:
    rng = np.random.default_rng(0)
    items: List[Item] = []
    for w in names:
        if w == "ops":
            items += _ops(protocol, rng)
        elif w == "breast_cancer":
            items.append(_epoch_item("breast_cancer 10 epochs", tutorials.breast_cancer_mlp(),
                                     protocol, None, calls=10, repeat=1))
        elif w == "mnist_step":
            items.append(_epoch_item("mnist_step", tutorials.mnist_mlp(), protocol, 1,
                                     calls=1, repeat=3))
        elif w in ("gpt2_tiny", "gpt2_small"):
            items += _gpt2(w.split("_")[1], protocol)
        else:
            raise ValueError(f"unknown workload {w!r}")
    return items


def measure(item: Item) -> float:
    """Median seconds of `repeat` timings of `calls` calls, after one warm-up call."""
    item.jf(*item.args, **item.kwargs)              # compile, key setup, program shipped
    ts = []
    for _ in range(item.repeat):
        t = time.perf_counter()
        for _ in range(item.calls):
            item.jf(*item.args, **item.kwargs)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def cost_of(item: Item, protocol: str) -> dict:
    """Rounds and bytes of the busiest party for the item's calls, from cost.dry_run."""
    program = item.jf.lower(*item.args, **item.kwargs).program
    rep = cost.dry_run(program, protocol)
    return {"rounds": rep.rounds * item.calls, "bytes": max(rep.party_bytes) * item.calls}


def predict(compute: float, rounds: int, nbytes: int, protocol: str,
            link: Optional[LinkModel]) -> float:
    if link is None:
        return compute
    wire = nbytes * 8 / link.bw if link.bw else 0.0
    return compute + rounds * link.rtt * ROUND_LATENCY.get(protocol, 1.0) + wire


def run_workloads(protocol: str, names: Sequence[str], links: Sequence[str],
                  use_link: Callable[[Optional[str]], None], log=print) -> List[dict]:
    """Measure every workload without emulation, then under each link of `links`.
    use_link(spec) makes the cluster the workloads' jit calls use emulate `spec`
    (None: no emulation). One row per (workload, link)."""
    items = workloads(protocol, names)
    costs = {it.name: cost_of(it, protocol) for it in items}
    rows: List[dict] = []
    base: Dict[str, float] = {}
    try:
        for spec in [None] + list(links):
            use_link(spec)
            model = LinkModel.parse(spec)
            for it in items:
                t = measure(it)
                base.setdefault(it.name, t)
                c = costs[it.name]
                pred = predict(base[it.name], c["rounds"], c["bytes"], protocol, model)
                rows.append(dict(protocol=protocol, link=spec or "none", case=it.name,
                                 measured_s=t, predicted_s=pred, error=(pred - t) / t, **c))
                log(_row(rows[-1]))
    finally:
        use_link(None)          # spu.jit's default cluster back as it was
    return _per_token(rows)


def _per_token(rows: List[dict]) -> List[dict]:
    """GPT-2: per further token = (3 tokens - first token) / 2, measured and predicted."""
    out = []
    for r in rows:
        out.append(r)
        if not r["case"].endswith(" 3 tokens"):
            continue
        first = next(f for f in rows if f["link"] == r["link"] and f["protocol"] == r["protocol"]
                     and f["case"] == r["case"].replace(" 3 tokens", " first token"))
        m, p = (r["measured_s"] - first["measured_s"]) / 2, (r["predicted_s"] - first["predicted_s"]) / 2
        out[-1] = dict(r, case=r["case"].replace(" 3 tokens", " per token"), measured_s=m,
                       predicted_s=p, error=(p - m) / m if m > 0 else float("nan"),
                       rounds=(r["rounds"] - first["rounds"]) // 2,
                       bytes=(r["bytes"] - first["bytes"]) // 2)
    return out


def _row(r: dict) -> str:
    return (f"{r['protocol']:<7}{r['link']:<20}{r['case']:<26}{r['measured_s']:>11.4f}"
            f"{r['predicted_s']:>12.4f}{r['error'] * 100:>+8.0f}%{r['rounds']:>8}"
            f"{r['bytes'] / 1e6:>11.2f}")


def link_label(spec: str) -> str:
    m = LinkModel.parse(spec)
    return f"{spec} ({m})" if spec.lower() in PRESETS and m else spec


def format_rows(rows: List[dict]) -> str:
    head = (f"{'proto':<7}{'link':<20}{'case':<26}{'measured s':>11}{'predicted s':>12}"
            f"{'error':>9}{'rounds':>8}{'MB':>11}")
    return "\n".join([head] + [_row(r) for r in rows])


def markdown(rows: List[dict]) -> str:
    lines = ["| protocol | link | case | measured s | predicted s | error | rounds | MB sent |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['protocol']} | {r['link']} | {r['case']} | {r['measured_s']:.4f} | "
                     f"{r['predicted_s']:.4f} | {r['error'] * 100:+.0f}% | {r['rounds']} | "
                     f"{r['bytes'] / 1e6:.2f} |")
    return "\n".join(lines)


def in_process_link(protocol: str) -> Callable[[Optional[str]], None]:
    """use_link for the in-process cluster: a cluster with emulated links becomes the
    default of spu.jit."""
    from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
    from .. import api

    def use(spec):
        api.set_default_cluster(None if spec is None else
                                InProcessCluster(ClusterConfig(protocol=protocol, net=spec)))
    return use


def main_in_process(protocols: Sequence[str], links: Sequence[str],
                    names: Optional[Sequence[str]]) -> int:
    """`spu-lite bench --net ...`: the workloads on the in-process cluster."""
    from .. import api
    rows: List[dict] = []
    try:
        for protocol in protocols:
            rows += run_workloads(protocol, names or DEFAULT_WORKLOADS,
                                  links or DEFAULT_LINKS, in_process_link(protocol))
    finally:
        api.set_default_cluster(None)
    print(format_rows(rows))
    return 0
