"""Writes notebooks/03_private_gpt2_inference.ipynb from its cell sources (plain text
here so diffs stay readable). Run: python notebooks/make_gpt2_notebook.py"""
import pathlib
import sys

import nbformat as nbf

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_notebooks import HERE, notebook  # noqa: E402 (same cell conventions as the others)


GPT2 = [
    """md:
# Private GPT-2 inference

One party owns GPT-2's weights, another owns a prompt. With spu-lite they generate text
together without showing each other either: the weights and the prompt's token ids are
secret-shared, every layer runs on shares, each new token is chosen by a secret argmax
and fed back as a secret, and only the generated token ids are revealed.

This notebook uses a tiny GPT-2 (2 layers, 64 dims, 4 heads, vocabulary 512) with random
weights so it runs in seconds; the same code runs GPT-2 small (see the benchmark
`python -m spu_lite.models.gpt2_bench --size small`).""",
    """
import os, time
import numpy as np
import jax, jax.numpy as jnp
import spu_lite as spu
from spu_lite.models import gpt2 as G
from spu_lite.models.gpt2_loader import config_from_checkpoint, load_gpt2_params

cfg = G.CONFIGS["tiny"]
print(cfg)
""",
    """md:
## The model
`spu_lite.models.gpt2.GPT2` is a Flax module whose parameter names follow the Hugging
Face checkpoint (`wte`, `wpe`, `h.0.ln_1.weight`, `h.0.attn.c_attn.weight` ...). With
`mpc_numerics=True` (the default) it uses MPC-friendly pieces: a polynomial GeLU, a
softmax with max subtraction, LayerNorm through `rsqrt`, and token embeddings as
`one_hot(ids) @ wte`, because a lookup `wte[ids]` with secret ids is not possible.

Random weights with HF's scale (0.02) make a random model repeat one token forever, so
we draw them larger to get a more interesting sequence.""",
    """
params = G.random_params(cfg, seed=0, std=0.2, perturb=0.1)
params["params"]["wte"]["weight"] *= 0.5
print(jax.tree_util.tree_map(np.shape, params["params"]["h"]["0"]["attn"]))

exact = G.GPT2(cfg.replace(mpc_numerics=False))
prompt = np.array([5, 17, 300, 2, 44, 9, 120, 77], np.int32)
diff = np.abs(G.GPT2(cfg).apply(params, prompt) - exact.apply(params, prompt)).max()
print(f"MPC-friendly numerics change the float logits by at most {diff:.2e}")
""",
    """md:
## Real GPT-2 weights
If a Hugging Face GPT-2 checkpoint is on disk (`model.safetensors` with its
`config.json`, or `pytorch_model.bin`), the loader maps it onto these parameters
exactly. Nothing is downloaded; set `GPT2_WEIGHTS` to the file's path.""",
    """
path = os.environ.get("GPT2_WEIGHTS", "gpt2/model.safetensors")
if os.path.exists(path):
    real_cfg = config_from_checkpoint(path)
    real_params = load_gpt2_params(path, real_cfg)
    n = sum(x.size for x in jax.tree_util.tree_leaves(real_params))
    print(f"loaded {path}: {n / 1e6:.1f}M parameters, {real_cfg.n_layer} layers")
    # private generation with them: G.private_generate(real_cfg, "aby3")(real_params, ids, n_new=1)
else:
    print(f"no checkpoint at {path!r}: continuing with the tiny random model")
""",
    """md:
## Generation: plaintext and under MPC
`make_generate(cfg)` gives one function `generate(params, prompt_ids, n_new)`: the
prompt fills a key/value cache, then a `fori_loop` produces one token per iteration
at a public position (the loop index), so each new token costs one position of compute.
Under plain `jax.jit` it is the plaintext reference; under `spu.jit` (what
`private_generate` does) params and prompt are secret and the loop stays a loop in the IR.""",
    """
n_new = 10
plain = np.asarray(G.plaintext_generate(cfg)(params, prompt, n_new=n_new))
rows = [("plaintext", plain, None)]
for protocol in ["aby3", "semi2k"]:
    gen = G.private_generate(cfg, protocol)
    t = time.perf_counter()
    tokens = gen(params, prompt, n_new=n_new)
    rows.append((protocol, tokens, time.perf_counter() - t))
for name, toks, secs in rows:
    extra = "" if secs is None else f"   {secs:5.2f} s incl. compile, same as plaintext: {list(toks) == list(plain)}"
    print(f"{name:>9}: {' '.join(f'{t:3d}' for t in toks)}{extra}")
""",
    """md:
## What one token costs
`spu.profile()` holds the per-op profile of the last run: seconds, bytes the busiest
party sent, and communication rounds. Here: the prompt and the first token under ABY3.
`dot` are the secret-weight products, `less` the comparisons (one-hot embedding, GeLU
tails, softmax max, argmax), `trunc` the fixed-point truncations.""",
    """
gen1 = G.private_generate(cfg, "aby3")
first = gen1(params, prompt, n_new=1)
print("first token:", first, " plaintext:", plain[:1])
print(spu.profile().table())
""",
    """md:
## The compiled program
The whole generation is one IR program: secret parameters in, a `for` loop over the new
tokens, revealed ids out.""",
    """
prog = spu.compile(G.make_generate(cfg), params, prompt, 3, static_argnames=("n_new",)).program
print(len(prog.params), "inputs, all secret:", all(p.type.secret for p in prog.params))
print("top-level ops:", len(prog.body.ops), " loops:", [op.name for op in prog.body.ops].count("for"))
print("output:", prog.results[0].type)
""",
]

if __name__ == "__main__":
    nbf.write(notebook(GPT2), HERE / "03_private_gpt2_inference.ipynb")
