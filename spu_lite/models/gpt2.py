"""GPT-2 in Flax, written so that it runs under MPC: secret weights, secret prompt,
greedy generation with a key/value cache inside one jitted function.

Parameters follow the Hugging Face GPT-2 checkpoint names and layouts, nested by the
dots of the names: "h.3.attn.c_attn.weight" is params["params"]["h"]["3"]["attn"]
["c_attn"]["weight"]; Conv1D weights are [in, out] (y = x @ W + b); wte is [vocab, n_embd]
and doubles as the (tied) LM head. `gpt2_loader.load_gpt2_params` maps a checkpoint.

Numerics (`GPT2Config.mpc_numerics`). With False the model is plain GPT-2 (tanh GeLU,
jax.nn.softmax with a -inf style mask, token lookup by gather); it runs under MPC as it
is (same greedy tokens as plaintext on the tiny config), at a higher cost: the lookup
at a secret id compares it with every vocabulary entry. With True (the default)
every step lowers to ops that are cheap and exact-enough on secret fixed-point values:
  * GeLU: `gelu_mpc`, 0.5 x + P((x/4)^2) on [-4, 4] with P of degree 6 (Horner),
    0 below -4, x above 4; one batched comparison and two selects. Max abs error against
    GPT-2's tanh GeLU 7.6e-4 over all reals (against erf GeLU 1.2e-3), with one
    comparison op where PUMA's 4-piece form needs three. Intermediate values stay
    below 35 in magnitude in [-4, 4] (whatever they are outside is discarded by the
    selects).
  * softmax: s <- where(mask, s, -1e4) (public mask, a local select), m = max(s) (a
    comparison tree), e = exp(s - m) * mask, p = e * (1 / sum(e)). Inputs of exp are
    <= 0 and the reciprocal's input lies in [1, key length]. Multiplying by the public
    0/1 mask after exp makes masked entries exactly 0 whatever exp does far below its
    accurate range (SPU's default exp cannot take -1e4; spu-lite's gives 0 there
    anyway); the -1e4 only keeps masked entries from winning the max. Error: that of
    the runtime's exp and reciprocal (measured 5e-6 on rows of U(-8, 8) scores).
  * LayerNorm: (x - mean) * rsqrt(var + eps) * w + b, one rsqrt per row (jax.lax.rsqrt).
    Identical to the exact formula in floating point; under MPC the error is the
    runtime's rsqrt error (relative) times |x - mean| / std.
  * token embedding of secret ids: one_hot(ids) @ wte (a lookup wte[ids] would need
    public ids). The one-hot is built from two digits of the id (`one_hot_secret`):
    ~2 sqrt(vocab) secret comparisons per token (449 for GPT-2) instead of vocab
    (jax.nn.one_hot's equality: 2 x vocab), kept integer so the product needs no
    truncation. Exact. Positions are public: wpe is sliced at the public position.
  * the vocabulary-sized products (embedding and LM head) run in chunks of
    `vocab_chunk` rows of wte, which bounds the protocol's temporaries (a 768 x 50257
    ABY3 product would otherwise need ~2.8 GB of scratch per party).
End to end (tiny config, tests/e2e/test_gpt2.py): MPC logits within 7.5e-4 (aby3),
4e-4 (semi2k) of plaintext with the same numerics; those numerics within 1.5e-3 of
exact GPT-2 (logits of magnitude ~3).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class GPT2Config:
    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    layer_norm_epsilon: float = 1e-5
    mpc_numerics: bool = True       # MPC-friendly GeLU / softmax / embedding (module doc)
    mask_value: float = -1e4        # additive mask of the MPC softmax (|.| << 1.7e13)
    vocab_chunk: int = 4096         # rows of wte per product in the embedding / LM head
    init_std: float = 0.02          # Flax init of the weights (HF: 0.02)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def n_inner(self) -> int:
        return 4 * self.n_embd

    def replace(self, **kw) -> "GPT2Config":
        return dataclasses.replace(self, **kw)


CONFIGS: Dict[str, GPT2Config] = {
    "small": GPT2Config(),                                     # GPT-2 small, 124M params
    "tiny": GPT2Config(vocab_size=512, n_positions=64, n_embd=64, n_layer=2, n_head=4),
}

# ---- MPC-friendly numerics ---------------------------------------------------------------

GELU_BOUND = 4.0
# gelu(x) - x/2 is even; on [-4, 4] it is fitted by P(u), u = (x/4)^2, minimax (Lawson)
# against the tanh GeLU: max error 7.5e-4 at the ends and at the equioscillation points.
GELU_COEFFS = (7.53359486e-04, 6.29584689e+00, -1.54374498e+01, 2.93675511e+01,
               -3.43138598e+01, 2.18510208e+01, -5.76468667e+00)


def gelu_mpc(x):
    """GeLU as compares + selects + products: x > 4 -> x; x < -4 -> 0; else
    x/2 + P((x/4)^2). One comparison op (both tails stacked), 7 products, 2 selects.
    Max abs error vs tanh GeLU 7.6e-4 (vs erf GeLU 1.2e-3)."""
    b = GELU_BOUND
    tails = jnp.stack([x - b, -b - x]) > 0          # one secret comparison for both
    hi, lo = tails[0], tails[1]
    u = (x * x) * (1.0 / (b * b))
    acc = GELU_COEFFS[-1] * u + GELU_COEFFS[-2]
    for c in GELU_COEFFS[-3::-1]:
        acc = acc * u + c
    mid = 0.5 * x + acc
    return jnp.where(hi, x, jnp.where(lo, jnp.zeros_like(x), mid))


def gelu(x, mpc: bool):
    return gelu_mpc(x) if mpc else jax.nn.gelu(x, approximate=True)


def masked_softmax(s, mask, cfg: GPT2Config):
    """Softmax over the last axis where mask (public bool, broadcastable) is True."""
    if not cfg.mpc_numerics:
        return jax.nn.softmax(jnp.where(mask, s, jnp.finfo(s.dtype).min), axis=-1)
    maskf = mask.astype(s.dtype)                     # 0/1, an integer: no truncation
    s = jnp.where(mask, s, cfg.mask_value)
    m = jax.lax.stop_gradient(jnp.max(s, axis=-1, keepdims=True))
    e = jnp.exp(s - m) * maskf
    return e * (1.0 / jnp.sum(e, axis=-1, keepdims=True))


def layer_norm(x, w, b, eps: float):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    d = x - mean
    var = jnp.mean(d * d, axis=-1, keepdims=True)
    return d * jax.lax.rsqrt(var + eps) * w + b


def _one_hot_direct(ids, n: int):
    """int32 one_hot(ids, n) as [id < j + 1] - [id < j]: one comparison per entry."""
    le = (ids[..., None] < jnp.arange(1, n + 1, dtype=ids.dtype)).astype(jnp.int32)
    return le - jnp.concatenate([jnp.zeros_like(le[..., :1]), le[..., :-1]], axis=-1)


def one_hot_secret(ids, n: int, dtype=jnp.float32):
    """one_hot(ids, n) for secret ids in [0, n), exact and integer-valued (products
    with it need no truncation). Two digits: id = b * hi + lo with b = ceil(sqrt(n));
    one_hot(hi) from comparisons with b, 2b, ..., hi from it by a local dot with
    0, 1, 2, ..., one_hot(lo) from comparisons, and their outer product (one secret
    product per entry, no comparison). ~2 sqrt(n) comparisons per id instead of n
    (GPT-2: 449 instead of 50257); a comparison costs far more than a product."""
    if n <= 64:
        return _one_hot_direct(ids, n).astype(dtype)
    b = math.isqrt(n - 1) + 1
    h = -(-n // b)
    le = (ids[..., None] < b * jnp.arange(1, h + 1, dtype=ids.dtype)).astype(jnp.int32)
    oh_hi = le - jnp.concatenate([jnp.zeros_like(le[..., :1]), le[..., :-1]], axis=-1)
    hi = jnp.sum(oh_hi * jnp.arange(h, dtype=jnp.int32), axis=-1)
    oh_lo = _one_hot_direct(ids - b * hi, b)
    oh = (oh_hi[..., :, None] * oh_lo[..., None, :]).reshape(*ids.shape, h * b)
    return oh[..., :n].astype(dtype)


def _chunks(n: int, size: int) -> List[Tuple[int, int]]:
    size = max(1, size)
    return [(a, min(n, a + size)) for a in range(0, n, size)]


# ---- modules (parameter names = Hugging Face names) -----------------------------------------

class Conv1D(nn.Module):
    """HF's Conv1D: y = x @ weight + bias, weight [in, out]."""
    features: int
    std: float = 0.02

    @nn.compact
    def __call__(self, x):
        w = self.param("weight", nn.initializers.normal(self.std), (x.shape[-1], self.features))
        b = self.param("bias", nn.initializers.zeros, (self.features,))
        return x @ w + b


class LayerNorm(nn.Module):
    eps: float = 1e-5

    @nn.compact
    def __call__(self, x):
        w = self.param("weight", nn.initializers.ones, (x.shape[-1],))
        b = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
        return layer_norm(x, w, b, self.eps)


class Embedding(nn.Module):
    num: int
    features: int
    std: float = 0.02

    def setup(self):
        self.weight = self.param("weight", nn.initializers.normal(self.std),
                                 (self.num, self.features))


class Attention(nn.Module):
    cfg: GPT2Config

    @nn.compact
    def __call__(self, x, start, cache=None, cache_len: int = 0):
        """x [S, D] at positions start..start+S-1 (start public: int or traced).
        cache None: attend over these S positions (prefill / full forward); returns
        the keys/values zero-padded to cache_len (or None if cache_len is 0).
        cache (K, V) [T, H, Dh]: write k, v at `start`, attend over the T slots."""
        c = self.cfg
        S, H, Dh = x.shape[0], c.n_head, c.head_dim
        q, k, v = jnp.split(Conv1D(3 * c.n_embd, c.init_std, name="c_attn")(x), 3, axis=-1)
        q, k, v = (t.reshape(S, H, Dh) for t in (q, k, v))
        if cache is None:
            K, V = k, v
            new_cache = None
            if cache_len:
                pad = ((0, cache_len - S), (0, 0), (0, 0))
                new_cache = (jnp.pad(k, pad), jnp.pad(v, pad))
        else:
            K = jax.lax.dynamic_update_slice(cache[0], k, (start, 0, 0))
            V = jax.lax.dynamic_update_slice(cache[1], v, (start, 0, 0))
            new_cache = (K, V)
        T = K.shape[0]
        qpos = start + jnp.arange(S)
        mask = jnp.arange(T)[None, :] <= qpos[:, None]             # [S, T], public
        scores = jnp.einsum("shd,thd->hst", q * (1.0 / math.sqrt(Dh)), K)
        p = masked_softmax(scores, mask[None], c)
        o = jnp.einsum("hst,thd->shd", p, V).reshape(S, c.n_embd)
        return Conv1D(c.n_embd, c.init_std, name="c_proj")(o), new_cache


class MLP(nn.Module):
    cfg: GPT2Config

    @nn.compact
    def __call__(self, x):
        c = self.cfg
        h = gelu(Conv1D(c.n_inner, c.init_std, name="c_fc")(x), c.mpc_numerics)
        return Conv1D(c.n_embd, c.init_std, name="c_proj")(h)


class Block(nn.Module):
    cfg: GPT2Config

    @nn.compact
    def __call__(self, x, start, cache=None, cache_len: int = 0):
        eps = self.cfg.layer_norm_epsilon
        a, cache = Attention(self.cfg, name="attn")(LayerNorm(eps, name="ln_1")(x), start,
                                                   cache, cache_len)
        x = x + a
        return x + MLP(self.cfg, name="mlp")(LayerNorm(eps, name="ln_2")(x)), cache


class Blocks(nn.Module):
    """The transformer layers, named "0", "1", ... (HF: h.0, h.1, ...)."""
    cfg: GPT2Config

    @nn.compact
    def __call__(self, x, start, caches=None, cache_len: int = 0):
        out = []
        for i in range(self.cfg.n_layer):
            x, c = Block(self.cfg, name=str(i))(x, start, None if caches is None else caches[i],
                                                 cache_len)
            out.append(c)
        return x, (None if out[0] is None else tuple(out))


class GPT2(nn.Module):
    """GPT-2 LM (tied head). Methods: __call__ (all logits), prefill, decode."""
    cfg: GPT2Config

    def setup(self):
        c = self.cfg
        self.wte = Embedding(c.vocab_size, c.n_embd, c.init_std)
        self.wpe = Embedding(c.n_positions, c.n_embd, 0.01)
        self.h = Blocks(c)
        self.ln_f = LayerNorm(c.layer_norm_epsilon)

    def embed(self, ids, start):
        c, W = self.cfg, self.wte.weight
        S = ids.shape[0]
        if c.mpc_numerics:
            oh = one_hot_secret(ids, c.vocab_size, W.dtype)
            tok = sum(oh[:, a:b] @ W[a:b] for a, b in _chunks(c.vocab_size, c.vocab_chunk))
        else:
            tok = jnp.take(W, ids, axis=0)
        P = self.wpe.weight
        pos = P[start:start + S] if isinstance(start, int) else \
            jax.lax.dynamic_slice(P, (start, 0), (S, c.n_embd))
        return tok + pos

    def lm_head(self, x):
        """x [S, D] -> logits [S, vocab] = x @ wte.T, in vocabulary chunks."""
        c, W = self.cfg, self.wte.weight
        dn = (((1,), (1,)), ((), ()))
        return jnp.concatenate([jax.lax.dot_general(x, W[a:b], dn)
                                for a, b in _chunks(c.vocab_size, c.vocab_chunk)], axis=-1)

    def __call__(self, ids):
        """Logits [S, vocab] for every position of ids [S] (no cache)."""
        x, _ = self.h(self.embed(ids, 0), 0)
        return self.lm_head(self.ln_f(x))

    def prefill(self, ids, cache_len: int):
        """Run the prompt; returns (logits of its last position [vocab], cache) with
        per layer (K, V) of shape [cache_len, n_head, head_dim]."""
        x, caches = self.h(self.embed(ids, 0), 0, None, cache_len)
        return self.lm_head(self.ln_f(x[-1:]))[0], caches

    def decode(self, ids, start, caches):
        """One step: ids [S] (usually S = 1) at public position `start`."""
        x, caches = self.h(self.embed(ids, start), start, caches)
        return self.lm_head(self.ln_f(x[-1:]))[0], caches


# ---- parameters --------------------------------------------------------------------------

def init_params(cfg: GPT2Config, seed: int = 0):
    """Flax initialisation (HF-like: N(0, init_std) weights, LN ones/zeros)."""
    return GPT2(cfg).init(jax.random.PRNGKey(seed), jnp.zeros((2,), jnp.int32))


def random_params(cfg: GPT2Config, seed: int = 0, std: Optional[float] = None,
                  perturb: float = 0.0):
    """Random weights in the Flax layout, made with numpy (fast for GPT-2 small).
    perturb > 0 also randomises biases (N(0, perturb)) and LN weights (1 + N(0, perturb))."""
    rng = np.random.default_rng(seed)
    std = cfg.init_std if std is None else std
    D = cfg.n_embd

    def normal(*shape, s=std):
        out = np.empty(shape, np.float32)
        flat = out.reshape(-1)
        for i in range(0, flat.size, 1 << 22):   # chunks: no float64 copy of the whole
            flat[i:i + (1 << 22)] = rng.standard_normal(min(1 << 22, flat.size - i)) * s
        return out

    def vec(n, base):
        return (base + normal(n, s=perturb)) if perturb else np.full(n, base, np.float32)

    def ln():
        return {"weight": vec(D, 1.0), "bias": vec(D, 0.0)}

    def conv(i, o):
        return {"weight": normal(i, o), "bias": vec(o, 0.0)}

    layers = {str(i): {"ln_1": ln(), "attn": {"c_attn": conv(D, 3 * D), "c_proj": conv(D, D)},
                       "ln_2": ln(), "mlp": {"c_fc": conv(D, cfg.n_inner), "c_proj": conv(cfg.n_inner, D)}}
              for i in range(cfg.n_layer)}
    return {"params": {"wte": {"weight": normal(cfg.vocab_size, D)},
                       "wpe": {"weight": normal(cfg.n_positions, D, s=0.01)},
                       "h": layers, "ln_f": ln()}}


# ---- generation ----------------------------------------------------------------------------

def make_generate(cfg: GPT2Config):
    """generate(params, prompt_ids, n_new) -> n_new greedy token ids (int32).

    One function for plain jax.jit and spu.jit (n_new static): the prompt fills the
    key/value cache, then a fori_loop feeds back one (secret) token per iteration at
    the public position len(prompt) + i, so a new token costs one position of compute.
    Only the returned ids are revealed under MPC."""
    model = GPT2(cfg)

    def generate(params, prompt_ids, n_new: int):
        P = prompt_ids.shape[-1]
        if n_new < 1:
            raise ValueError("n_new must be >= 1")
        if P + n_new - 1 > cfg.n_positions:
            raise ValueError(f"prompt ({P}) + new tokens ({n_new}) exceed n_positions")
        T = P + n_new - 1                       # positions ever fed to the model
        logits, caches = model.apply(params, prompt_ids, T, method=GPT2.prefill)
        tok = jnp.argmax(logits).astype(jnp.int32)
        out = jax.lax.dynamic_update_slice(jnp.zeros((n_new,), jnp.int32), tok[None], (0,))
        if n_new == 1:
            return out

        def step(i, carry):
            tok, out, caches = carry
            logits, caches = model.apply(params, tok[None], P + i, caches, method=GPT2.decode)
            tok = jnp.argmax(logits).astype(jnp.int32)
            return tok, jax.lax.dynamic_update_slice(out, tok[None], (i + 1,)), caches

        return jax.lax.fori_loop(0, n_new - 1, step, (tok, out, caches))[1]

    generate.__name__ = "gpt2_generate"
    return generate


def plaintext_generate(cfg: GPT2Config):
    """The same generate under plain jax.jit (n_new static)."""
    return jax.jit(make_generate(cfg), static_argnames=("n_new",))


def private_generate(cfg: GPT2Config, protocol: str = "aby3", **spu_config):
    """generate under spu.jit: params and prompt ids secret, generated ids revealed."""
    from .. import api
    return api.jit(make_generate(cfg), protocol=protocol, static_argnames=("n_new",),
                   **spu_config)
