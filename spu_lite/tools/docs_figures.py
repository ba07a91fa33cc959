"""Writes measured figures into the docs: one marked, dated block per figure set.

The figures of docs/performance.md and docs/precision.md are quoted nowhere else; they
are rewritten from the JSON the measuring commands print:

    spu-lite bench --repeat 5 --json bench.json
    python -m spu_lite.tools.docs_figures bench bench.json            # -> docs/performance.md
    spu-lite bench-train --json training.json
    python -m spu_lite.tools.docs_figures training training.json      # -> docs/performance.md
    spu-lite precision --json > precision.jsonl
    python -m spu_lite.tools.docs_figures precision precision.jsonl   # -> docs/precision.md

A block lies between `<!-- begin generated: NAME -->` and `<!-- end generated: NAME -->`;
everything outside it is prose and stays as it is.
"""
from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import re
import sys
from typing import Iterable, List, Optional, Sequence

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
PAGES = {"bench": DOCS / "performance.md", "training": DOCS / "performance.md",
         "precision": DOCS / "precision.md"}


def begin_marker(name: str) -> str:
    return f"<!-- begin generated: {name} (python -m spu_lite.tools.docs_figures {name}) -->"


def end_marker(name: str) -> str:
    return f"<!-- end generated: {name} -->"


def replace_block(text: str, name: str, body: str) -> str:
    """`text` with the block `name` replaced by `body` (the page must hold its markers)."""
    pattern = re.compile(re.escape(begin_marker(name)) + r".*?" + re.escape(end_marker(name)),
                         re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"no block {name!r}: the page needs the lines {begin_marker(name)!r} "
                         f"and {end_marker(name)!r}")
    return pattern.sub(lambda _: f"{begin_marker(name)}\n{body.strip()}\n{end_marker(name)}", text)


def _num(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def bench_block(data: dict) -> str:
    """Markdown for `spu-lite bench --json` output: per case, seconds per protocol next
    to SPU's and their ratio."""
    meta, rows = data["meta"], data["rows"]
    protocols = list(dict.fromkeys(r["protocol"] for r in rows))
    cases = list(dict.fromkeys(r["case"] for r in rows))
    by = {(r["case"], r["protocol"]): r for r in rows}
    head = ["case"] + [h for p in protocols for h in (f"{p} s", f"SPU {p} s", "ratio")]
    lines = [f"Measured {meta['time'][:10]}: median of {meta['repeat']} end-to-end runs after a "
             f"warm-up{' (quick: 1/16 sizes, no SPU ratio)' if meta.get('quick') else ''}, "
             f"{meta.get('cpus', '?')} CPUs, jax {meta.get('jax', '?')}.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in cases:
        cells = [c]
        for p in protocols:
            r = by.get((c, p), {})
            if r.get("error"):
                cells += ["error", "-", "-"]
            else:
                cells += [_num(r.get("seconds"), ".3f"), _num(r.get("spu_seconds"), ".3f"),
                          _num(r.get("ratio_spu"), ".2f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def training_block(data: dict) -> str:
    """Markdown for `spu-lite bench-train --json` output."""
    meta, rows = data["meta"], data["rows"]
    lines = [f"Measured {meta['time'][:10]} by `spu-lite bench-train` ({meta.get('cpus', '?')} "
             f"CPUs; a step: median of {meta['repeat']} runs).", "",
             "| workload | protocol | spu-lite s | SPU s | ratio | details |", "|---|---|---|---|---|---|"]
    names = {"breast_cancer": "breast-cancer MLP, 10 epochs inside MPC, compile included",
             "mnist_step": "MNIST-sized SGD step (784-128-64-10, batch 64)"}
    for r in rows:
        if r["case"] == "breast_cancer":
            details = f"test AUC {r['auc_mpc']:.4f}, plaintext {r['auc_plain']:.4f}"
        elif r.get("bytes") is not None:
            details = f"{r['bytes'] / 1e6:.1f} MB, {r['rounds']} rounds (busiest party)"
        else:
            details = "-"
        lines.append("| " + " | ".join([names.get(r["case"], r["case"]), r["protocol"],
                                          _num(r.get("seconds"), ".3f"),
                                          _num(r.get("spu_seconds"), ".2f"),
                                          _num(r.get("ratio_to_spu"), ".2f"), details]) + " |")
    return "\n".join(lines)


def precision_block(rows: Sequence[dict], date: str, protocol: str) -> str:
    """Markdown for `spu-lite precision --json` rows (one JSON object per line)."""
    head = ["op", "domain", "in", "max abs", "max rel", "mean abs", "SPU max abs", "SPU max rel"]
    lines = [f"Measured {date}, {protocol}: error against float64 (relative error divides "
             f"by max(|ref|, 1e-6)); in = fractional bits of the encoded input.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([
            r["op"], r.get("domain") or "-", _num(r.get("input_frac"), "d"),
            _num(r.get("max_abs"), ".1e"), _num(r.get("max_rel"), ".1e"),
            _num(r.get("mean_abs"), ".1e"), _num(r.get("spu_max_abs"), ".1e"),
            _num(r.get("spu_max_rel"), ".1e")]) + " |")
    return "\n".join(lines)


def write(page: pathlib.Path, name: str, body: str) -> None:
    page.write_text(replace_block(page.read_text(), name, body))


def _json_lines(lines: Iterable[str]) -> List[dict]:
    return [json.loads(ln) for ln in lines if ln.strip()]


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m spu_lite.tools.docs_figures",
                                 description="Rewrite the generated block of a docs page.")
    ap.add_argument("kind", choices=sorted(PAGES))
    ap.add_argument("source", help="bench / training: the file of `spu-lite bench "
                                   "--json FILE` / `spu-lite bench-train --json FILE`; "
                                   "precision: the output of `spu-lite precision --json`")
    ap.add_argument("--page", default=None, help="page to rewrite (default: the docs page)")
    ap.add_argument("--date", default=None, help="precision: date of the measurement "
                                                 "(default: today)")
    ap.add_argument("--protocol", default="aby3", help="precision: protocol measured")
    args = ap.parse_args(argv)
    page = pathlib.Path(args.page) if args.page else PAGES[args.kind]
    text = pathlib.Path(args.source).read_text()
    if args.kind == "bench":
        body = bench_block(json.loads(text))
    elif args.kind == "training":
        body = training_block(json.loads(text))
    else:
        date = args.date or datetime.date.today().isoformat()
        body = precision_block(_json_lines(text.splitlines()), date, args.protocol)
    write(page, args.kind, body)
    print(f"rewrote the {args.kind} block of {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
