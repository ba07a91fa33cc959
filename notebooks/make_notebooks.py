"""Writes the tutorial notebooks from their cell sources (kept here as plain text so
diffs stay readable). Run: python notebooks/make_notebooks.py"""
import pathlib

import nbformat as nbf

HERE = pathlib.Path(__file__).resolve().parent


def notebook(cells):
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbf.v4.new_markdown_cell(src[3:].strip()) if src.startswith("md:")
                else nbf.v4.new_code_cell(src.strip()) for src in cells]
    return nb


QUICKSTART = [
    """md:
# spu-lite quickstart: secret sharing in five minutes

Three parties want `x * y` without showing `x` or `y` to anyone. spu-lite splits each
input into *shares*: random-looking numbers that add up to the value (mod 2^64).
Each party holds some shares; no single party learns anything; the parties compute
on shares and reveal only the result.""",
    """
import numpy as np
import jax, jax.numpy as jnp
import spu_lite as spu
from runtime.cluster import ClusterConfig, InProcessCluster
from runtime.ring import Ring
""",
    """md:
## Sharing a value
Real numbers become fixed-point integers: `round(x * 2^18)` in the ring Z_2^64. ABY3
splits that integer into three random pieces `x0 + x1 + x2`; party *i* holds
`(x_i, x_{i+1})`, so any two parties could reconstruct, but one alone sees only
uniformly random numbers.""",
    """
cluster = InProcessCluster(ClusterConfig(protocol="aby3", seed=0))
ring = Ring(64)
encoded = ring.encode(np.array([3.25]), 18)
shares = cluster.share(encoded)
for rank, s in enumerate(shares):
    print(f"party {rank} holds", [hex(int(p[0])) for p in s.parts])
print("sum of the three pieces:", ring.decode(shares[0].parts[0] + shares[1].parts[0] + shares[2].parts[0], 18))
""",
    """md:
## Add, multiply, reveal
`spu.jit` does all of this for a JAX function: it shares the inputs, runs the
computation on shares, and reveals the output. Addition is local; multiplication
needs one round of communication; a fixed-point product is then truncated.""",
    """
@spu.jit
def add_and_mul(x, y):
    return x + y, x * y

x = np.array([1.5, -2.0, 3.0])
y = np.array([0.5, 4.0, -1.25])
s, p = add_and_mul(x, y)
print("x + y =", s, "  plaintext:", x + y)
print("x * y =", p, "  plaintext:", x * y)
""",
    """md:
## A neural-network layer
The same works for whole programs: matrix products, comparisons (relu), reductions.""",
    """
@spu.jit
def layer(x, w, b):
    return jax.nn.relu(x @ w + b)

rng = np.random.default_rng(0)
x, w, b = rng.normal(size=(8, 4)), rng.normal(size=(4, 3)), rng.normal(size=3)
out = layer(x, w, b)
print(np.round(out, 4))
print("max abs error vs plaintext:", np.abs(out - jax.nn.relu(x @ w + b)).max())
""",
    """md:
## Inspect the IR
The compiler lowers the traced jaxpr to an IR in which every value is typed
`visibility<dtype>[shape]`. Note the single `trunc` after the dot product plus bias,
and the public constant.""",
    """
print(spu.compile(layer, x, w, b).text)
""",
    """md:
## The profile
Every call records, per op, the time, the bytes each party sent and the rounds of
communication (the maximum over parties).""",
    """
print(layer.last_profile.table())
""",
    """md:
## Other protocols
`semi2k` runs with 2 (or more) parties and a dealer; `ref2k` is the plaintext
reference with the same fixed-point arithmetic, handy for debugging.""",
    """
for protocol in ["semi2k", "ref2k"]:
    f = spu.jit(lambda x, w, b: jax.nn.relu(x @ w + b), protocol=protocol)
    print(protocol, np.abs(f(x, w, b) - jax.nn.relu(x @ w + b)).max())
""",
]

if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    nbf.write(notebook(QUICKSTART), HERE / "00_quickstart.ipynb")
