"""Private GPT-2 generation benchmark: memory, time to the first token, per token, bytes.

    python -m spu_lite.models.gpt2_bench --size small --protocol aby3 [--n-new 3]

Random weights (seeded), a random secret prompt, secret weights, greedy tokens
revealed. Reported (`run` returns them as a dict):
  peak_rss_gb        peak resident memory of this process (ru_maxrss), plus the peak
                     per phase (params / compile / run) from a psutil sampler
  first_token_s      compile + sharing the inputs + prompt + first token (wall clock)
  per_token_s        each further token (the generation loop's time / its trips)
  bytes_first_token  bytes sent by the busiest party for the prompt and first token
  bytes_per_token    bytes sent per further token (max over parties, per op)
Times are wall clock in the in-process cluster (all parties share this machine's cores).

BLAS threads: the parties are threads that multiply at the same time, so OpenBLAS's own
threads oversubscribe the cores; its spinning threads then make a 16 x 3072 x 768
float64 GEMM ~20x slower under load (171 ms vs 8 ms measured on the 2-core machine).
`blas_threads=1` (the default here) limits BLAS to one thread per call through
threadpoolctl while the benchmark runs.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import resource
import sys
import threading
import time
from typing import Dict, Optional

import numpy as np

from .gpt2 import CONFIGS, plaintext_generate, private_generate, random_params


class _RssSampler:
    """Peak RSS per named phase, sampled every `every` seconds by a daemon thread."""

    def __init__(self, every: float = 0.05):
        try:
            import psutil
            self._proc = psutil.Process()
        except ImportError:            # pragma: no cover - psutil is optional
            self._proc = None
        self.every, self.phase, self.peaks = every, "start", {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.every)

    def sample(self):
        if self._proc is not None:
            rss = self._proc.memory_info().rss
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), rss)

    def __enter__(self):
        if self._proc is not None:
            self._thread.start()
        return self

    def set(self, phase: str):
        self.sample()
        self.phase = phase
        self.sample()

    def __exit__(self, *exc):
        self._stop.set()


def _gb(nbytes: float) -> float:
    return round(nbytes / 2 ** 30, 3)


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)


def run(config_name: str = "small", protocol: str = "aby3", prompt_len: int = 16,
        n_new: int = 1, seed: int = 0, check: bool = True, blas_threads: Optional[int] = 1,
        log=print) -> Dict[str, object]:
    """Generate n_new tokens privately from a random prompt; see the module doc.

    Args:
      config_name: "small" (GPT-2 small: 12 x 768, 12 heads, vocab 50257) or "tiny".
      protocol: "aby3", "semi2k" or "ref2k".
      check: also run the plaintext path and compare the tokens.
      blas_threads: BLAS threads per call while running (None: leave as is).
    """
    cfg = CONFIGS[config_name]
    out: Dict[str, object] = dict(config=config_name, protocol=protocol, prompt_len=prompt_len,
                                  n_new=n_new, blas_threads=blas_threads)
    with _RssSampler() as rss, _blas_limit(blas_threads):
        rss.set("params")
        t = time.perf_counter()
        params = random_params(cfg, seed)
        prompt = np.random.default_rng(seed + 1).integers(0, cfg.vocab_size, prompt_len).astype(np.int32)
        out["params_s"] = round(time.perf_counter() - t, 2)
        n_params = sum(int(np.prod(x.shape)) for x in _leaves(params))
        out["n_params"] = n_params
        log(f"[gpt2_bench] {config_name}: {n_params / 1e6:.1f}M params, prompt {prompt_len}, "
            f"{n_new} new token(s), {protocol}")

        gen = private_generate(cfg, protocol)
        rss.set("compile")
        t0 = time.perf_counter()
        compiled = gen.lower(params, prompt, n_new)
        compile_s = time.perf_counter() - t0
        out["ir_ops"] = _count_ops(compiled.program.body)
        log(f"[gpt2_bench] compiled in {compile_s:.1f}s ({out['ir_ops']} IR ops)")

        rss.set("run")
        t1 = time.perf_counter()
        tokens = gen(params, prompt, n_new)
        run_s = time.perf_counter() - t1
        rss.set("done")
        prof = gen.last_profile

    loop = prof.blocks.get("for")                 # the generation loop, body included
    loop_s = loop.seconds if loop else 0.0
    loop_b = loop.bytes if loop else 0
    total_b = prof.total.bytes
    out.update(
        tokens=[int(x) for x in tokens],
        compile_s=round(compile_s, 2), run_s=round(run_s, 2),
        first_token_s=round(compile_s + run_s - loop_s, 2),
        per_token_s=round(loop_s / (n_new - 1), 2) if n_new > 1 else None,
        bytes_first_token=int(total_b - loop_b),
        bytes_per_token=int(loop_b / (n_new - 1)) if n_new > 1 else None,
        peak_rss_gb=_gb(peak_rss_bytes()),
        rss_phase_peak_gb={k: _gb(v) for k, v in rss.peaks.items()},
    )
    out["top_ops"] = [(name, round(s.seconds, 2), int(s.bytes)) for name, s in
                      sorted(prof.ops.items(), key=lambda kv: -kv[1].seconds) if name != "for"][:8]
    if check:
        plain = plaintext_generate(cfg)(params, prompt, n_new=n_new)
        out["plaintext_tokens"] = [int(x) for x in np.asarray(plain)]
        out["tokens_match"] = out["plaintext_tokens"] == out["tokens"]
    log("[gpt2_bench] " + json.dumps(out))
    return out


def _blas_limit(n: Optional[int]):
    if n is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:            # pragma: no cover - comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(n, user_api="blas")


def _leaves(tree):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _leaves(v)
    else:
        yield tree


def _count_ops(block) -> int:
    return sum(1 + sum(_count_ops(b) for b in op.blocks) for op in block.ops)


def main(argv: Optional[list] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small", choices=sorted(CONFIGS))
    ap.add_argument("--protocol", default="aby3", choices=["aby3", "semi2k", "ref2k"])
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--n-new", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-check", action="store_true", help="skip the plaintext comparison")
    ap.add_argument("--blas-threads", type=int, default=1, help="BLAS threads per call (0: as is)")
    ap.add_argument("--json", help="also write the result to this file")
    a = ap.parse_args(argv)
    res = run(a.size, a.protocol, a.prompt_len, a.n_new, a.seed, check=not a.no_check,
              blas_threads=a.blas_threads or None)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
