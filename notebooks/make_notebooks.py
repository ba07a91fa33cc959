"""Writes the tutorial notebooks from their cell sources (kept here as plain text so
diffs stay readable). Run: python notebooks/make_notebooks.py, then
python notebooks/execute_notebooks.py to save them with their outputs."""
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
from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
from spu_lite.runtime.ring import Ring
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

BREAST_CANCER = [
    """md:
# Secure MLP training on breast cancer (SecretFlow SPU's tutorial, under spu-lite)

Alice holds features 0-14 of every patient, Bob holds features 15-29 and the labels.
They train a Flax MLP [30, 15, 8, 1] (relu, loss mean((pred - y)^2 / 2), SGD 0.01,
batch 10) without showing each other their data. Each epoch is one secure program
(a scan over batches); parameters stay secret between epochs; only each epoch's mean
loss is revealed for the progress bar. The trained model is revealed at the end.""",
    """
import time
import numpy as np
import matplotlib.pyplot as plt
import spu_lite as spu
from spu_lite.examples import tutorials
from spu_lite.train import Trainer

EPOCHS = 3          # the tutorial uses 10; kept small so the test suite runs this quickly
setup = tutorials.breast_cancer_mlp()
alice_x, bob_x = tutorials.split_features(setup.x_train)
print("Alice:", alice_x.shape, " Bob:", bob_x.shape, "+ labels", setup.y_train.shape)
""",
    """md:
## Plaintext and MPC, side by side
The same epoch function runs under `jax.jit` (plaintext) and under `spu.jit` (3-party
ABY3). The model sees the concatenation of Alice's and Bob's columns.""",
    """
x_train = np.concatenate([alice_x, bob_x], axis=1)
results = {}
for name, protocol in [("plaintext", None), ("aby3", "aby3")]:
    t0 = time.perf_counter()
    params, history = Trainer(setup.loss_fn, setup.optimizer, protocol=protocol).fit(
        setup.params, x_train, setup.y_train, epochs=EPOCHS, batch_size=setup.batch_size)
    results[name] = (params, history, time.perf_counter() - t0)
    print(f"{name:>9}: test AUC {tutorials.auc(setup, params):.4f}  "
          f"({results[name][2]:.1f} s, losses {[round(l, 4) for l in history['loss']]})")
""",
    """
fig, ax = plt.subplots(figsize=(5, 3))
for name, (_, history, _) in results.items():
    history.plot(["loss"], ax=ax, label=name)
ax.set_title("training loss per epoch")
plt.show()
""",
    """md:
## What did the parties exchange?
The profile of the last epoch: per op, the bytes each party sent and the rounds.""",
    """
print(spu.profile().table())
""",
]

MNIST = [
    """md:
# Secure training of an MNIST-sized network (PySyft's tutorial, under spu-lite)

MLP 784-128-64-10 with relu, MSE on one-hot labels, SGD 0.02, batch 64, over 640
training images. MNIST cannot be downloaded here, so the images are sklearn's bundled
8x8 digits upsampled x3 and padded to 28x28 (`spu_lite.examples.datasets.digits_28x28`); with
the real files, `spu_lite.examples.datasets.load_mnist(directory)` reads the standard idx files.""",
    """
import time
import numpy as np
import matplotlib.pyplot as plt
import spu_lite as spu
from spu_lite.examples import tutorials
from spu_lite.train import Trainer

EPOCHS = 3          # the tutorial uses 10; kept small so the test suite runs this quickly
setup = tutorials.mnist_mlp()
print("train", setup.x_train.shape, "test", setup.x_test.shape)
""",
    """
runs = {}
for name, protocol in [("plaintext", None), ("semi2k", "semi2k")]:
    evaluate = lambda p: {"accuracy": tutorials.accuracy(setup, p)}
    t0 = time.perf_counter()
    params, history = Trainer(setup.loss_fn, setup.optimizer, protocol=protocol).fit(
        setup.params, setup.x_train, setup.y_train, epochs=EPOCHS,
        batch_size=setup.batch_size, evaluate=evaluate)
    runs[name] = history
    print(f"{name:>9}: accuracy {history['accuracy'][-1]:.3f}, "
          f"{(time.perf_counter() - t0) / (EPOCHS * 10):.3f} s per step")
""",
    """
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
for name, history in runs.items():
    history.plot(["loss"], ax=axes[0], label=name)
    history.plot(["accuracy"], ax=axes[1], label=name)
axes[0].set_title("loss"); axes[1].set_title("test accuracy")
plt.show()
""",
    """md:
Evaluating after every epoch reveals the parameters to the caller (here: the model
owner). To keep them secret until the end, leave out `evaluate`: the parameters then
stay as `spu.Secret` handles between epochs.""",
]

if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    nbf.write(notebook(QUICKSTART), HERE / "00_quickstart.ipynb")
    nbf.write(notebook(BREAST_CANCER), HERE / "01_secure_mlp_breast_cancer.ipynb")
    nbf.write(notebook(MNIST), HERE / "02_secure_mnist_training.ipynb")
