"""Load Hugging Face GPT-2 weights into the Flax parameters of spu_lite.models.gpt2.

Sources (nothing is downloaded):
  * model.safetensors      -- needs the `safetensors` package (its numpy API)
  * pytorch_model.bin / .pt -- needs `torch` (loaded with weights_only=True)
  * .npz                   -- numpy's own archive of name -> array
  * a mapping name -> array (numpy arrays, or anything with .numpy(), e.g. torch tensors)

Names are HF's, with or without the "transformer." prefix of GPT2LMHeadModel; the
attention buffers (attn.bias: the causal mask, attn.masked_bias) are dropped, and
lm_head.weight, tied to wte.weight in GPT-2, must equal it if present. Conv1D weights
are [in, out] in HF and here, so nothing is transposed: the mapping is name -> nested
dict by the dots of the name, checked exactly (every parameter present, no stray
names, every shape as the config says, cast to float32).

    params = load_gpt2_params("gpt2/model.safetensors")           # config from config.json
    cfg = config_from_checkpoint("gpt2/model.safetensors")
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from .gpt2 import GPT2Config

PathLike = Union[str, os.PathLike]
_BUFFERS = re.compile(r"^h\.\d+\.attn\.(bias|masked_bias)$")
_PREFIXES = ("transformer.", "model.transformer.")


class CheckpointError(ValueError):
    """A checkpoint that does not map onto the GPT-2 parameters exactly."""


# ---- reading files -------------------------------------------------------------------------

def read_state_dict(path: PathLike) -> Dict[str, np.ndarray]:
    """name -> numpy array from a .safetensors, torch (.bin/.pt/.pth) or .npz file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".safetensors":
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise ImportError("reading .safetensors needs the `safetensors` package: "
                              "pip install safetensors") from None
        return dict(load_file(path))
    if ext == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    if ext in (".bin", ".pt", ".pth"):
        try:
            import torch
        except ImportError:
            raise ImportError("reading a PyTorch state dict needs `torch` (pip install torch); "
                              "or convert it to .safetensors / .npz elsewhere") from None
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, Mapping) and "state_dict" in state and len(state) <= 3:
            state = state["state_dict"]
        return dict(state)
    raise CheckpointError(f"unknown checkpoint format {ext!r} (use .safetensors, .bin/.pt or .npz)")


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):                       # torch tensor (bf16/fp16 -> float32)
        x = x.detach().cpu()
        if getattr(x, "dtype", None) is not None and str(x.dtype) in ("torch.bfloat16", "torch.float16"):
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def _read_config_json(path: PathLike) -> Optional[dict]:
    d = path if os.path.isdir(path) else os.path.dirname(os.fspath(path))
    f = os.path.join(d, "config.json")
    if os.path.exists(f):
        with open(f) as fh:
            return json.load(fh)
    return None


# ---- names ------------------------------------------------------------------------------

def canonical_state_dict(state: Mapping[str, Any]) -> Dict[str, np.ndarray]:
    """Strip prefixes, drop buffers and a tied lm_head; values as numpy arrays."""
    out: Dict[str, np.ndarray] = {}
    lm_head = None
    for name, value in state.items():
        for p in _PREFIXES:
            if name.startswith(p):
                name = name[len(p):]
                break
        if _BUFFERS.match(name):
            continue
        if name == "lm_head.weight":
            lm_head = _to_numpy(value)
            continue
        if name in out:
            raise CheckpointError(f"parameter {name!r} appears twice")
        out[name] = _to_numpy(value)
    if lm_head is not None and "wte.weight" in out:
        if lm_head.shape != out["wte.weight"].shape or not np.array_equal(lm_head, out["wte.weight"]):
            raise CheckpointError("lm_head.weight differs from wte.weight: this model's LM head is tied")
    elif lm_head is not None:
        out["wte.weight"] = lm_head
    return out


def expected_shapes(cfg: GPT2Config) -> Dict[str, Tuple[int, ...]]:
    """HF name -> shape of every parameter of a GPT-2 with config cfg."""
    D, F = cfg.n_embd, cfg.n_inner
    shapes = {"wte.weight": (cfg.vocab_size, D), "wpe.weight": (cfg.n_positions, D),
              "ln_f.weight": (D,), "ln_f.bias": (D,)}
    for i in range(cfg.n_layer):
        p = f"h.{i}."
        for ln in ("ln_1", "ln_2"):
            shapes[p + ln + ".weight"] = (D,)
            shapes[p + ln + ".bias"] = (D,)
        for mod, (a, b) in {"attn.c_attn": (D, 3 * D), "attn.c_proj": (D, D),
                            "mlp.c_fc": (D, F), "mlp.c_proj": (F, D)}.items():
            shapes[p + mod + ".weight"] = (a, b)
            shapes[p + mod + ".bias"] = (b,)
    return shapes


def config_from_state_dict(state: Mapping[str, Any], n_head: Optional[int] = None,
                           **overrides) -> GPT2Config:
    """Infer vocab_size, n_positions, n_embd, n_layer from the shapes; n_head cannot be
    read off the weights (default n_embd // 64, as in every released GPT-2)."""
    sd = canonical_state_dict(state)
    try:
        V, D = sd["wte.weight"].shape
        npos = sd["wpe.weight"].shape[0]
    except KeyError as e:
        raise CheckpointError(f"missing parameter {e.args[0]!r}: not a GPT-2 checkpoint?") from None
    layers = {int(m.group(1)) for k in sd if (m := re.match(r"^h\.(\d+)\.", k))}
    n_layer = max(layers) + 1 if layers else 0
    kw = dict(vocab_size=V, n_positions=npos, n_embd=D, n_layer=n_layer,
              n_head=n_head or max(1, D // 64))
    kw.update(overrides)
    return GPT2Config(**kw)


def config_from_checkpoint(path: PathLike, **overrides) -> GPT2Config:
    """Config from the config.json next to the checkpoint (HF keys), else from shapes."""
    js = _read_config_json(path)
    if js is None:
        return config_from_state_dict(read_state_dict(path), **overrides)
    kw = {k: js[k] for k in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head",
                             "layer_norm_epsilon") if k in js}
    if js.get("n_inner") not in (None, 4 * kw.get("n_embd", 768)):
        raise CheckpointError("n_inner != 4 * n_embd is not supported")
    kw.update(overrides)
    return GPT2Config(**kw)


# ---- mapping --------------------------------------------------------------------------

def state_dict_to_params(state: Mapping[str, Any], cfg: Optional[GPT2Config] = None,
                         dtype=np.float32) -> Dict[str, Any]:
    """HF state dict -> {"params": nested dict}, exactly the tree GPT2(cfg).init makes."""
    sd = canonical_state_dict(state)
    cfg = cfg or config_from_state_dict(sd)
    want = expected_shapes(cfg)
    missing = sorted(set(want) - set(sd))
    extra = sorted(set(sd) - set(want))
    if missing or extra:
        raise CheckpointError(f"checkpoint does not match the config: missing {missing[:6]}"
                              f"{' ...' if len(missing) > 6 else ''}, unexpected {extra[:6]}"
                              f"{' ...' if len(extra) > 6 else ''}")
    tree: Dict[str, Any] = {}
    for name, shape in want.items():
        arr = sd[name]
        if tuple(arr.shape) != shape:
            raise CheckpointError(f"{name}: shape {tuple(arr.shape)}, expected {shape}")
        if not np.issubdtype(arr.dtype, np.floating):
            raise CheckpointError(f"{name}: dtype {arr.dtype} is not floating point")
        node = tree
        *path, leaf = name.split(".")
        for p in path:
            node = node.setdefault(p, {})
        node[leaf] = np.ascontiguousarray(arr, dtype=dtype)
    return {"params": tree}


def params_to_state_dict(params: Mapping[str, Any], prefix: str = "") -> Dict[str, np.ndarray]:
    """Inverse of state_dict_to_params: {"params": tree} -> flat HF names."""
    tree = params["params"] if "params" in params else params
    out: Dict[str, np.ndarray] = {}

    def walk(node, path):
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, path + [str(k)])
        else:
            out[prefix + ".".join(path)] = np.asarray(node)
    walk(tree, [])
    return out


def load_gpt2_params(source: Union[PathLike, Mapping[str, Any]],
                     cfg: Optional[GPT2Config] = None, dtype=np.float32) -> Dict[str, Any]:
    """Flax params from a checkpoint file or a state dict (see the module doc).

    Args:
      source: path to model.safetensors / pytorch_model.bin / .npz, or a mapping.
      cfg: the model config; default: config.json beside the file, else the shapes.
    Returns:
      {"params": ...} for GPT2(cfg).apply.
    """
    if isinstance(source, Mapping):
        return state_dict_to_params(source, cfg, dtype)
    if cfg is None and _read_config_json(source) is not None:
        cfg = config_from_checkpoint(source)
    return state_dict_to_params(read_state_dict(source), cfg, dtype)
