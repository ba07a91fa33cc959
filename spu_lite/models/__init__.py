"""Models written for private inference with spu-lite (GPT-2 so far).

    from spu_lite.models import GPT2, GPT2Config, make_generate, load_gpt2_params
"""
from .gpt2 import (CONFIGS, GPT2, GPT2Config, gelu_mpc, init_params, make_generate,
                   plaintext_generate, private_generate, random_params)
from .gpt2_loader import load_gpt2_params

__all__ = ["CONFIGS", "GPT2", "GPT2Config", "gelu_mpc", "init_params", "make_generate",
           "plaintext_generate", "private_generate", "random_params", "load_gpt2_params"]
