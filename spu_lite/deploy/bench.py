"""Deployment benchmark: the op cases on real node processes (encrypted zmq over
127.0.0.1) next to the in-process cluster and SPU's multi-process figures; with --net,
workloads on emulated LAN / WAN links next to the cost model's prediction
(spu_lite/tools/bench_net.py).

    python -m spu_lite.deploy.bench [--protocol aby3 semi2k] [--size 65536] [--repeat 5]
        [--net lan wan] [--workloads ops breast_cancer mnist_step gpt2_tiny gpt2_small]
        [--doc docs/performance-network.md]

Per case and protocol: warm up once (compile, key setup), then --repeat end-to-end
calls of the jitted function (share, send, run, receive, reconstruct) on each cluster,
alternating between them; the medians are reported. Bytes and rounds are the run's
totals (max over parties), identical on both clusters since the same party code runs. `--size` is the number of elements of the
elementwise cases; matmul multiplies two sqrt(size) x sqrt(size) matrices.
bench_rows() is what another benchmark can call.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from .bench_notes import LOOPBACK_NOTES, PHASES_INTRO


# SecretFlow SPU 0.9.5's multi-process runtime on loopback, inputs already shared,
# n = 65,536 / matmul 256, median of 5 (issue 14, measured on this class of machine).
SPU_MULTIPROCESS = {"aby3": {"mul": 0.064, "less": 0.163, "relu": 0.190, "matmul_256": 0.102},
                    "semi2k": {"mul": 0.049, "less": 0.124, "relu": 0.147, "matmul_256": 0.094}}


def _cases(size: int, rng) -> Dict[str, tuple]:
    import jax
    k = max(2, int(round(size ** 0.5)))
    vec = lambda: rng.uniform(-4, 4, size)
    mat = lambda: rng.uniform(-1, 1, (k, k))
    return {"mul": (lambda x, y: x * y, (vec(), vec())),
            f"matmul_{k}": (lambda x, y: x @ y, (mat(), mat())),
            "less": (lambda x, y: x < y, (vec(), vec())),
            "relu": (lambda x: jax.nn.relu(x), (vec(),))}


def _time_pair(jf_net, jf_loc, args, repeat: int, phases_of=lambda: {}):
    """Both clusters' medians, their calls alternating (a machine whose load drifts
    during the run moves both alike), both runs' last totals, and the median of each
    phase of the networked calls (phases_of(): the cluster's last_phases)."""
    jf_net(*args)                               # warm-up: compile, session setup
    jf_loc(*args)
    ts, phases = {0: [], 1: []}, []
    for i in range(repeat):
        for k in ((0, 1) if i % 2 == 0 else (1, 0)):
            t = time.perf_counter()
            (jf_net, jf_loc)[k](*args)
            ts[k].append(time.perf_counter() - t)
            if k == 0:
                phases.append(dict(phases_of()))
    keys = dict.fromkeys(k for ph in phases for k in ph)
    med = {k: statistics.median(ph.get(k, 0.0) for ph in phases) for k in keys}
    return [statistics.median(ts[k]) for k in (0, 1)], [jf.last_profile.total
                                                        for jf in (jf_net, jf_loc)], med


def _node_cpu(pids: Sequence[int]) -> Optional[float]:
    """CPU seconds (user + system) the node processes used so far; None without /proc."""
    total = 0.0
    try:
        for pid in pids:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return total


def _cpu_per_job(jf_net, jf_loc, args, pids: Sequence[int], calls: int) -> Dict[str, float]:
    """CPU seconds per call, back to back after the timed calls: the driver process and
    the node processes for jf_net; this process (all parties) for jf_loc. CPU time
    counts what a job costs whatever else the machine runs (wall time does not)."""
    out = {}
    d0, n0 = time.process_time(), _node_cpu(pids)
    for _ in range(calls):
        jf_net(*args)
    d1, n1 = time.process_time(), _node_cpu(pids)
    for _ in range(calls):
        jf_loc(*args)
    out["cpu_driver"], out["cpu_inproc"] = (d1 - d0) / calls, (time.process_time() - d1) / calls
    if n0 is not None and n1 is not None:
        out["cpu_nodes"] = (n1 - n0) / calls
    return out


def _cluster_file(d: str, protocol: str, timeout: float, net: Optional[str] = None) -> str:
    from .keygen import keygen
    from .launcher import free_ports
    parties, dealer = (["alice", "bob", "carol"], None) if protocol == "aby3" \
        else (["alice", "bob"], "dave")
    path = keygen(d, parties, dealer, protocol=protocol, timeout=timeout,
                  ports=free_ports(len(parties) + (1 if dealer else 0)))
    if net:
        with open(path, "a") as f:
            f.write(f"net: \"{net}\"\n")
    return path


def bench_rows(protocols: Sequence[str] = ("aby3", "semi2k"), size: int = 65_536,
               repeat: int = 5, timeout: float = 60.0) -> List[dict]:
    """One row per (protocol, case): seconds / bytes / rounds on the loopback cluster
    and in-process, the ratio of the times, and SPU's multi-process figure."""
    import spu_lite as spu
    from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
    from .driver import NetworkCluster
    from .launcher import Launcher

    rows = []
    for protocol in protocols:
        with tempfile.TemporaryDirectory() as d:
            path = _cluster_file(d, protocol, timeout)
            with Launcher(path, log_dir=f"{d}/logs") as launcher:
                net = NetworkCluster(path)
                pids = [p.pid for p in launcher.procs.values()]
                local = InProcessCluster(ClusterConfig(protocol=protocol,
                                                       nparties=net.nparties))
                try:
                    for name, (fn, args) in _cases(size, np.random.default_rng(0)).items():
                        jf_net = spu.jit(fn, cluster=net, check=False)      # timed: no watch
                        jf_loc = spu.jit(fn, cluster=local, check=False)    # no watch: timed
                        (t_net, t_loc), (tot, tot_loc), phases = _time_pair(
                            jf_net, jf_loc, args, repeat, lambda: net.last_phases)
                        cpu = _cpu_per_job(jf_net, jf_loc, args, pids, max(repeat, 20))
                        b, r, b_loc = tot.bytes, tot.rounds, tot_loc.bytes
                        spu_s = SPU_MULTIPROCESS.get(protocol, {}).get(name) \
                            if size == 65_536 else None
                        rows.append(dict(protocol=protocol, case=name, net_s=t_net,
                                         inproc_s=t_loc, bytes=b, rounds=r,
                                         ratio=t_net / t_loc, same_bytes=b == b_loc,
                                         spu_s=spu_s, phases=phases, repeat=repeat, **cpu))
                finally:
                    net.close()
    return rows


def net_rows(protocols: Sequence[str], links: Sequence[str], names: Sequence[str],
             timeout: float = 120.0, log=print) -> List[dict]:
    """bench_net.run_workloads on node processes: the cluster is started again with
    `net:` set for every link (the first time without emulation)."""
    from spu_lite import api
    from spu_lite.tools import bench_net
    from .driver import NetworkCluster
    from .launcher import Launcher

    rows = []
    for protocol in protocols:
        live = {}

        def use_link(spec, protocol=protocol, live=live):
            _stop(live)
            live["dir"] = tempfile.TemporaryDirectory()
            path = _cluster_file(live["dir"].name, protocol, timeout, spec)
            live["launcher"] = Launcher(path, log_dir=f"{live['dir'].name}/logs").start()
            live["cluster"] = NetworkCluster(path)
            api.set_default_cluster(live["cluster"])
        try:
            rows += bench_net.run_workloads(protocol, names, links, use_link, log)
        finally:
            _stop(live)
            api.set_default_cluster(None)
    return rows


def _stop(live: dict) -> None:
    if "cluster" in live:
        live.pop("cluster").close()
    if "launcher" in live:
        live.pop("launcher").stop()
    if "dir" in live:
        live.pop("dir").cleanup()



MERGED = (" (merged with --from-json: a later run's row replaces an earlier run's row of the "
          "same case, so each table shows the latest run that measured it)")



def format_table(rows: List[dict]) -> str:
    lines = [f"{'protocol':<9}{'case':<12}{'net s':>9}{'in-proc s':>11}{'ratio':>8}"
             f"{'SPU mp s':>10}{'ours/SPU':>9}{'bytes':>13}{'rounds':>8}{'cpu ms net':>11}"
             f"{'in-proc':>8}"]
    for r in rows:
        spu = r.get("spu_s")
        lines.append(f"{r['protocol']:<9}{r['case']:<12}{r['net_s']:>9.4f}{r['inproc_s']:>11.4f}"
                     f"{r['ratio']:>8.2f}{spu or float('nan'):>10.3f}"
                     f"{r['net_s'] / spu if spu else float('nan'):>9.2f}"
                     f"{r['bytes']:>13}{r['rounds']:>8}"
                     f"{(r.get('cpu_driver', 0) + r.get('cpu_nodes', 0)) * 1e3:>11.1f}"
                     f"{r.get('cpu_inproc', 0) * 1e3:>8.1f}")
    return "\n".join(lines)


def phases_table(rows: List[dict]) -> str:
    """Where the networked time goes (ms, each phase's median over the timed calls):
    see driver._phases."""
    keys = ["prepare", "dispatch", "queue", "setup", "consent_wait", "program", "inputs", "run",
            "run_wait", "wait_dealer", "back", "transit", "reconstruct", "total"]
    lines = ["| protocol | case | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for r in rows:
        ph = r.get("phases") or {}
        lines.append(f"| {r['protocol']} | {r['case']} | " +
                     " | ".join(f"{ph.get(k, 0.0) * 1e3:.1f}" for k in keys) + " |")
    return "\n".join(lines)


def write_doc(path: str, loop_rows: List[dict], rows: List[dict], missing: Sequence[str],
              runs: Sequence[Sequence[str]], load: str) -> None:
    """docs/performance-network.md: generated, with the date and the machine's load."""
    from spu_lite.tools import bench_net
    cmds = ", then ".join(f"`python -m spu_lite.deploy.bench {' '.join(r)}`" for r in runs)
    out = ["# Performance on networks", "",
           f"Generated by {cmds}{MERGED if len(runs) > 1 else ''} on "
           f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
           f"{len(os.sched_getaffinity(0))} cores, load average (1, 5, 15 min) when each "
           f"run finished: {load}. The machine was shared: absolute seconds are noisy, ratios "
           f"within one run less so.", "",
           "Emulate a network on one machine (this kernel has no netem; the transport "
           "shapes the links, runtime/link.py): `net: \"rtt=20ms,bw=100mbit\"` in the "
           "cluster file (every node and the driver read it), `spu.jit(f, net=\"wan\")` "
           "for the in-process cluster, `spu-lite bench --net lan wan` and "
           "`python -m spu_lite.deploy.bench --net lan wan`. Presets: lan = 1 Gbit/s, "
           "0.2 ms; wan = 100 Mbit/s, 20 ms; wan40 = 100 Mbit/s, 40 ms. Every party has "
           "one uplink of that bandwidth; every message takes rtt/2 one way. The links "
           "between the driver and the nodes are not shaped.", ""]
    if loop_rows:
        out += ["## Loopback: node processes vs in-process vs SPU", "",
                "Real node processes (zmq over 127.0.0.1: CURVE-authenticated, data sealed with "
                "AES-256-GCM), end to end from "
                "the driver (share, send, run, return, reconstruct), median of "
                f"{loop_rows[0].get('repeat', 5)} after a "
                "warm-up, networked and in-process calls alternating; n = 65,536, matmul "
                "256 x 256. SPU: SecretFlow SPU 0.9.5's "
                "multi-process runtime on the same kind of machine, inputs already shared.", "",
                "| protocol | case | nodes s | in-process s | nodes / in-process | SPU mp s "
                "| ours / SPU | rounds | bytes | CPU ms driver + nodes | CPU ms in-process |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in loop_rows:
            spu = r.get("spu_s")
            vs = f"{spu} | {r['net_s'] / spu:.2f}" if spu else "- | -"
            cpu = (f"{r['cpu_driver'] * 1e3:.1f} + {r['cpu_nodes'] * 1e3:.1f} | "
                   f"{r['cpu_inproc'] * 1e3:.1f}" if "cpu_nodes" in r else "- | -")
            out.append(f"| {r['protocol']} | {r['case']} | {r['net_s']:.4f} | "
                       f"{r['inproc_s']:.4f} | {r['ratio']:.2f} | {vs} | {r['rounds']} | "
                       f"{r['bytes']:,} | {cpu} |")
        out += [""] + [line for p in LOOPBACK_NOTES for line in (" ".join(p.split()), "")]
        out += [" ".join(PHASES_INTRO.split()), "",
                phases_table(loop_rows), ""]
    if rows:
        out += ["## LAN and WAN, measured vs predicted", "",
                "Node processes on this machine with emulated links (`net:` in the cluster "
                "file; runtime/link.py), each next to the cost model's prediction:", "",
                "    " + bench_net.__doc__.split("\n\n")[1].strip(), "",
                " ".join(bench_net.__doc__.split("\n\n")[2].split()), "",
                "Links: " + ", ".join(bench_net.link_label(l) for l in
                                      dict.fromkeys(r["link"] for r in rows)) + ".", "",
                bench_net.markdown(rows), ""]
        errs = [abs(r["error"]) for r in rows if r["link"] != "none" and r["error"] == r["error"]]
        if errs:
            out += [f"Prediction error over the emulated rows: median {statistics.median(errs):.0%}, "
                    f"max {max(errs):.0%} (error = (predicted - measured) / measured).", "",
                    "Known sources of error: the emulated link time of a message overlaps "
                    "its real transfer (encryption, copies), which the prediction adds, so "
                    "bandwidth-bound rows on LAN come out below the prediction; every held "
                    "message costs a sleep whose wake-up is late on a busy machine, so rows "
                    "with many rounds of small messages come out above it when the machine "
                    "was loaded (a run's load is in the first paragraph).", ""]
    if missing:
        out += ["## Not measured in this run", ""] + [f"- {m}" for m in missing] + [""]
    with open(path, "w") as f:
        f.write("\n".join(out))


def main(argv=None) -> int:
    import sys
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m spu_lite.deploy.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", nargs="+", default=["aby3", "semi2k"],
                   choices=["aby3", "semi2k"])
    p.add_argument("--size", type=int, default=65_536)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--net", nargs="*", default=None, metavar="LINK",
                   help="also run the workloads on emulated links: lan, wan, wan40 or "
                        "rtt=20ms,bw=100mbit (none given: lan wan)")
    p.add_argument("--workloads", nargs="+", default=None,
                   help="with --net: ops breast_cancer mnist_step gpt2_tiny gpt2_small")
    p.add_argument("--no-loopback", action="store_true", help="skip the loopback op table")
    p.add_argument("--json", metavar="FILE", help="also save the rows as JSON")
    p.add_argument("--from-json", nargs="+", metavar="FILE", help="run nothing: merge rows "
                   "saved with --json (e.g. by separate runs; a later file's row replaces "
                   "an earlier one of the same case) and print / --doc them")
    p.add_argument("--doc", metavar="FILE", help="write the tables as markdown (e.g. "
                                                   "docs/performance-network.md)")
    a = p.parse_args(argv)
    from spu_lite.tools import bench_net
    if a.from_json:
        loop_rows, rows, missing, runs, loads = [], [], [], [], []
        for path in a.from_json:
            with open(path) as f:
                got = json.load(f)
            loop_rows = _replaced(loop_rows, got["loop_rows"], ("protocol", "case"))
            rows = _replaced(rows, got["rows"], ("protocol", "link", "case"))
            missing += got["missing"]
            runs.append(got["argv"])
            loads.append(f"{got.get('date', '?')}: "
                         f"{' '.join(f'{x:.1f}' for x in got.get('load', ()))}")
        done = {_workload_of(r["case"]) for r in rows}
        missing = [m for m in dict.fromkeys(missing) if m.split(":")[0] not in done]
    else:
        loop_rows, rows, missing = _run(a)
        runs = [argv]
        loads = [" ".join(f"{x:.1f}" for x in os.getloadavg())]
    if loop_rows:
        print(format_table(loop_rows))
    if rows:
        print(bench_net.format_rows(rows))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"loop_rows": loop_rows, "rows": rows, "missing": missing,
                       "argv": argv, "load": os.getloadavg(),
                       "date": time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, f, indent=1)
    if a.doc:
        write_doc(a.doc, loop_rows, rows, missing, runs, "; ".join(loads))
    return 0


def _replaced(rows: List[dict], later: List[dict], key) -> List[dict]:
    """rows merged with a later run's: a later row replaces an earlier one of the same
    key (the table shows the latest measurement), new keys are appended."""
    at = {tuple(r[k] for k in key): i for i, r in enumerate(rows)}
    out = list(rows)
    for r in later:
        i = at.get(tuple(r[k] for k in key))
        if i is None:
            at[tuple(r[k] for k in key)] = len(out)
            out.append(r)
        else:
            out[i] = r
    return out


def _workload_of(case: str) -> str:
    name = case.split(" ")[0]
    return "ops" if name in ("mul", "less", "relu") or name.startswith("matmul") else name


def _run(a):
    from spu_lite.tools import bench_net
    loop_rows = [] if a.no_loopback else bench_rows(a.protocol, a.size, a.repeat)
    rows, missing = [], []
    if a.net is not None:
        links = a.net or list(bench_net.DEFAULT_LINKS)
        names = a.workloads or list(bench_net.DEFAULT_WORKLOADS)
        rows = net_rows(a.protocol, links, names)
        missing = [f"{w}: not run (not in --workloads)" for w in
                   ("ops", "breast_cancer", "mnist_step", "gpt2_tiny", "gpt2_small")
                   if w not in names]
    return loop_rows, rows, missing


if __name__ == "__main__":
    raise SystemExit(main())
