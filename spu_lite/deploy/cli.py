"""`spu-lite node ...` and `spu-lite cluster ...`; wired into spu_lite/tools/cli.py through
add_subcommands / dispatch, and runnable alone: python -m spu_lite.deploy.cli ...

    spu-lite node --cluster cluster.yaml --party alice [--loader NAME=MODULE:FUNC ...]
                  [--log FILE]                 the job log (default STATE_DIR/jobs.jsonl)
    spu-lite approve --cluster cluster.yaml --party alice [DIGEST] [--approve|--deny] [--ir]
                                               review programs alice's node refused
    spu-lite cluster up cluster.yaml [--parties alice bob]
    spu-lite cluster keygen DIR --parties alice bob carol [--dealer dave] [--base-port 7100]
    spu-lite cluster keygen DIR --parties alice bob --no-dealer    (semi2k_ot: no third party)
    spu-lite cluster check cluster.yaml        ping every node as the driver
    spu-lite cluster precompute cluster.yaml FILE.py:FUNC --arg f32[8,4] ... [--times N]
                                               semi2k_ot: correlations ahead of jobs
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import List, Optional

from spu_lite.tools.cli_compile import parse_arg_spec, parse_static, parse_target

COMMANDS = ("node", "cluster", "approve")


def add_subcommands(subparsers) -> None:
    node = subparsers.add_parser("node", help="run one party of a cluster (a long-lived process)")
    node.add_argument("--cluster", required=True, help="the cluster file (YAML)")
    node.add_argument("--party", required=True, help="this node's name in the cluster file")
    node.add_argument("--loader", action="append", default=[], metavar="NAME=MODULE:FUNC",
                      help="register a named input loader (repeatable)")
    node.add_argument("--log-level", default="INFO")
    node.add_argument("--insecure-test-seed", action="store_true",
                      help="accept `seed:` from the cluster file (predictable keys and "
                           "shares: tests only)")
    node.add_argument("--log", metavar="FILE",
                      help="append the job log here (default: STATE_DIR/jobs.jsonl)")

    ap = subparsers.add_parser("approve", help="review and approve or deny the programs a "
                                               "node refused (its pending programs)")
    ap.add_argument("--cluster", required=True, help="the cluster file (YAML)")
    ap.add_argument("--party", required=True, help="the node whose programs to review")
    ap.add_argument("digest", nargs="?", help="a pending program (a prefix of its digest); "
                                              "without it, list them")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--approve", action="store_true", help="approve without asking")
    how.add_argument("--deny", action="store_true", help="deny without asking")
    ap.add_argument("--ir", action="store_true", help="also print the program's IR")
    ap.add_argument("--no-cost", action="store_true", help="skip the cost dry run")

    cl = subparsers.add_parser("cluster", help="start a cluster locally, or make keys for one")
    sub = cl.add_subparsers(dest="cluster_cmd", required=True)
    up = sub.add_parser("up", help="start every party of a cluster file here (subprocesses)")
    up.add_argument("cluster")
    up.add_argument("--parties", nargs="+", help="only these parties")
    up.add_argument("--insecure-test-seed", action="store_true",
                    help="start the nodes with --insecure-test-seed (tests only)")
    kg = sub.add_parser("keygen", help="key pairs and a cluster.yaml on 127.0.0.1")
    kg.add_argument("dir")
    kg.add_argument("--parties", nargs="+", required=True)
    who = kg.add_mutually_exclusive_group()
    who.add_argument("--dealer", help="semi2k: the dealer's name (protocol becomes semi2k)")
    who.add_argument("--no-dealer", action="store_true",
                     help="two parties, no dealer: they make semi2k's correlations "
                          "themselves by oblivious transfer (protocol semi2k_ot)")
    kg.add_argument("--base-port", type=int, default=7100)
    kg.add_argument("--host", default="127.0.0.1")
    kg.add_argument("--protocol", choices=("aby3", "semi2k", "semi2k_ot", "ref2k"))
    kg.add_argument("--timeout", type=float, default=60.0)
    kg.add_argument("--seed", type=int, help="deterministic keys and shares (tests only!)")
    kg.add_argument("--trust-driver-code", action="store_true",
                    help="write `trust_driver_code: true`: parties run loader code the "
                         "driver sends (default: only named loaders)")
    kg.add_argument("--force", action="store_true",
                    help="replace existing key files and cluster.yaml")
    kg.add_argument("--keys-only", action="store_true",
                    help="only write DIR/NAME.key(_secret) for each name and print the public "
                         "keys (what one organisation does for itself)")
    ck = sub.add_parser("check", help="connect as the driver and ping every node")
    ck.add_argument("cluster")
    pc = sub.add_parser("precompute", help="semi2k_ot: have both nodes make the correlations "
                                           "of a program's next calls now (offline phase)",
                        description="Compile FUNC as `spu-lite cost` does, count the "
                                    "correlations one call asks for (kinds and shapes: "
                                    "the nodes get these counts, not the program), and have "
                                    "the two nodes make TIMES calls' worth now; the next "
                                    "jobs of the session take them from the pools.",
                        epilog="example: spu-lite cluster precompute cluster.yaml "
                               "model.py:step --arg f32[10,30] --arg f32[10] --times 5")
    pc.add_argument("cluster")
    pc.add_argument("target", type=parse_target, metavar="FILE.py:FUNC")
    pc.add_argument("--arg", action="append", type=parse_arg_spec, default=[], metavar="SPEC",
                    help="one per non-static parameter, in order, e.g. f32[8,4]")
    pc.add_argument("--public", action="append", default=[], metavar="I|NAME",
                    help="the I-th --arg or parameter NAME is public; repeatable")
    pc.add_argument("--static", action="append", type=parse_static, default=[],
                    metavar="NAME=VALUE", help="bake parameter NAME in; repeatable")
    pc.add_argument("--times", type=int, default=1, help="calls' worth (default 1)")


def dispatch(args) -> int:
    from spu_lite.runtime.link import PeerError
    from spu_lite.runtime.net.auth import CredentialError
    from .cluster_file import ClusterFileError
    try:
        if args.command == "node":
            return _node(args)
        if args.command == "approve":
            return _approve(args)
        if args.cluster_cmd == "up":
            from .launcher import cluster_up
            return cluster_up(args.cluster, args.parties, args.insecure_test_seed)
        if args.cluster_cmd == "keygen" and args.keys_only:
            from .keygen import keygen_one
            for name in args.parties:
                print(f"{name}: public_key: \"{keygen_one(args.dir, name, args.force)}\"")
            return 0
        if args.cluster_cmd == "keygen":
            from .keygen import keygen
            protocol = args.protocol
            if args.no_dealer:
                if protocol not in (None, "semi2k", "semi2k_ot"):
                    raise ValueError(f"--no-dealer is semi2k without a dealer, not {protocol}")
                protocol = "semi2k_ot"
            path = keygen(args.dir, args.parties, args.dealer, args.base_port, args.host,
                          protocol, args.timeout, args.seed, args.trust_driver_code,
                          force=args.force)
            print(path)
            return 0
        if args.cluster_cmd == "precompute":
            return _precompute(args)
        if args.cluster_cmd == "check":
            from .driver import NetworkCluster
            c = NetworkCluster(args.cluster)
            print(f"all {len(c.spec.parties)} nodes answer: "
                  f"{', '.join(p.name for p in c.spec.parties)}")
            c.close()
            return 0
    except (ClusterFileError, CredentialError, PeerError, ValueError, OSError) as e:
        print(f"spu-lite: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - e.g. zmq.ZMQError: address already in use
        if type(e).__module__.startswith("zmq"):
            print(f"spu-lite: error: {e}", file=sys.stderr)
            return 1
        raise
    return 2


def _precompute(args) -> int:
    from spu_lite.tools.cli_compile import _compile_from_args
    from spu_lite.two_party import correlation_counts
    from .cluster_file import load
    from .driver import NetworkCluster
    from .precompute import precompute_on
    spec = load(args.cluster)
    if spec.protocol != "semi2k_ot":
        raise ValueError(f"precompute is for semi2k_ot clusters; {args.cluster} runs "
                         f"{spec.protocol}")
    if args.times < 1:
        raise ValueError("--times must be at least 1")
    args.field, args.fxp_bits, args.no_opt = spec.field, spec.fxp_bits, False
    program = _compile_from_args(args)
    counts = {k: n * args.times for k, n in correlation_counts(program).items()}
    c = NetworkCluster(spec)
    try:
        got = precompute_on(c, counts)
    finally:
        c.close()
    kinds = ", ".join(f"{n:,} {_kind_name(k)}" for k, n in counts.items())
    print(f"made {kinds} for {args.times} call(s) of {program.name}: "
          f"{got['seconds']:.2f} s, {got['bytes'] / 2 ** 20:.1f} MB sent by the busiest "
          f"node; {got['pooled_mb']:.1f} MB pooled per node")
    return 0


def _kind_name(key) -> str:
    from .precompute import encode_counts
    e = encode_counts({key: 1})[0]
    return f"dot {e[1]}x{e[2]}" if e[0] == "dot" else \
        f"trunc>>{e[1]}" if e[0] == "trunc" else e[0]


def _node(args) -> int:
    from .launcher import die_with_launcher
    die_with_launcher()
    logging.basicConfig(level=args.log_level.upper(),
                        format=f"%(asctime)s {args.party} %(levelname)s %(message)s")
    extra = {}
    for item in args.loader:
        name, sep, target = item.partition("=")
        if not sep or ":" not in target:
            raise ValueError(f"--loader {item!r}: expected NAME=MODULE:FUNC")
        extra[name] = target
    sys.path.insert(0, os.getcwd())          # loaders from the node's working directory
    from .node import run_node
    run_node(args.cluster, args.party, extra, args.insecure_test_seed, args.log)
    return 0


def _approve(args) -> int:
    from .approvals import ApprovalStore, show, summary_line
    from .cluster_file import load
    spec = load(args.cluster)
    me = spec.parties[spec.rank(args.party)]
    store = ApprovalStore(me.state_dir)
    if not args.digest:
        pending = store.pending()
        print(f"{len(pending)} program(s) pending at {args.party} (policy {me.policy}):")
        for rec in pending:
            print("  " + summary_line(rec))
        if pending:
            print(f"review one: spu-lite approve --cluster {args.cluster} --party "
                  f"{args.party} DIGEST")
        return 0
    rec = store.find(args.digest)
    print(show(rec, spec.protocol, with_ir=args.ir, with_cost=not args.no_cost))
    decision = "approve" if args.approve else "deny" if args.deny else None
    if decision is None and sys.stdin.isatty():
        answer = input("approve this program? [y/N] ").strip().lower()
        decision = "approve" if answer in ("y", "yes") else "deny"
    if decision is None:
        print("no decision recorded (add --approve or --deny)")
        return 0
    store.record(rec, decision)
    print(f"{'approved' if decision == 'approve' else 'denied'}: {rec['digest'][:12]} at "
          f"{args.party} (recorded in {store.decisions_path})")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="spu-lite")
    sub = parser.add_subparsers(dest="command", required=True)
    add_subcommands(sub)
    return dispatch(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
