"""SecretFlow SPU's figures: the one place the benchmarks read them from.

SPU 0.9.5 on a 2-core machine, in-process simulation, FM64 with 18 fractional bits
(shared/anchors/README.md; the precision domains are those of shared/anchors/
spu_precision.py). The docs quote them only through the pages the benchmarks write
(docs/performance.md, docs/precision.md).
"""
from typing import Dict

# Op cases of `spu-lite bench`: seconds end to end (median of 3 runs), per protocol.
OP_SECONDS: Dict[str, Dict[str, float]] = {
    "mul_1M": {"aby3": 0.385, "semi2k": 0.276},
    "matmul_512": {"aby3": 0.255, "semi2k": 0.214},
    "less_1M": {"aby3": 1.961, "semi2k": 1.110},
    "relu_1M": {"aby3": 1.889, "semi2k": 1.157},
    "exp_128k": {"aby3": 0.129, "semi2k": 0.119},
    "reciprocal_128k": {"aby3": 0.731, "semi2k": 0.616},
    "sigmoid_128k": {"aby3": 0.918, "semi2k": 0.812},
    "softmax_128x1024": {"aby3": 1.209, "semi2k": 1.002},
}

# `spu-lite precision`: errors against float64 on the same domains, aby3.
MAX_ABS: Dict[str, float] = {
    "exp": 1.70, "log": 1.5e-4, "reciprocal": 2.1e-4, "rsqrt": 7.6e-4, "sqrt": 4.1e-4,
    "sigmoid": 9.5e-4, "tanh": 4.9e-3, "erf": 4.9e-4, "gelu": 4.1e-4, "softmax": 1.6e-3,
}
MAX_REL: Dict[str, float] = {
    "exp": 0.128, "log": 0.075, "reciprocal": 3.7e-4, "rsqrt": 3.7e-4, "sqrt": 9.2e-5,
    "sigmoid": 0.276, "tanh": 0.016,
}
MEAN_ABS: Dict[str, float] = {
    "exp": 0.087, "log": 3.5e-6, "reciprocal": 1.6e-6, "rsqrt": 1.7e-5, "sqrt": 9.8e-5,
    "sigmoid": 3.2e-4, "tanh": 2.3e-3, "erf": 2.2e-4, "gelu": 9.0e-5,
}

# `spu-lite bench-train`: seconds per workload and protocol.
TRAINING_SECONDS: Dict[str, Dict[str, float]] = {
    "breast_cancer": {"aby3": 30.0},          # 10 epochs inside MPC, compile included
    "mnist_step": {"aby3": 0.54, "semi2k": 0.51},
}

# GPT-2 small (124M), 16-token prompt, aby3: first token incl. compile, peak RSS.
GPT2_SMALL = {"first_token_seconds": 92.8, "peak_rss_gb": 15.2}
