"""Writes notebooks/04_federated_secure_aggregation.ipynb from its cell sources (kept
here as plain text so diffs stay readable). Run: python notebooks/make_fl_notebook.py"""
import pathlib
import sys

import nbformat as nbf

HERE = pathlib.Path(__file__).resolve().parent
PATH = HERE / "04_federated_secure_aggregation.ipynb"

CELLS = [
    """md:
# Federated learning with secure aggregation (and DP inside MPC)

A **model owner** wants a digit classifier; three **data owners** each hold part of the
training data and will not show it to anyone. Federated averaging (FedAvg) keeps the data
where it is: each round the current model goes to the data owners, each trains locally,
and only model *updates* travel. But an individual update still leaks a lot about the data
it came from, so here the updates do not go to the model owner either: each data owner
**secret-shares** its update among the computing parties, which average the shares under
MPC (`spu.jit`) and reveal **only the aggregate** to the model owner.

Inspired by TF Encrypted's *federated learning with secure aggregation* and PySyft's
federated MNIST / secure-worker averaging tutorials.""",
    """
import time
import warnings
import numpy as np
import jax, jax.numpy as jnp, optax
import matplotlib.pyplot as plt
import spu_lite.fl as fl
from spu_lite.fl import digits as D
""",
    """md:
## Data, model, local training
sklearn's bundled 8x8 digits (1797 images), a stratified test set for the model owner,
the rest split across three data owners. The model is a 64-32-10 MLP in plain JAX; local
training is 25 steps of minibatch SGD per round (`fl.LocalTrainer`, plaintext JAX/optax on
the owner's own machine). The centralised baseline trains on the pooled data with the same
number of steps.""",
    """
task = D.digits_task(n_owners=3, seed=0)
print("examples per data owner:", [len(x) for x, _ in task.owners], "| test:", len(task.x_test))
trainer = fl.LocalTrainer(D.cross_entropy, optax.sgd(0.3), steps=25, batch_size=32)
params0 = D.init_mlp(jax.random.PRNGKey(0))
ROUNDS = 20
central = D.train_centralised(params0, task.x_train, task.y_train, trainer, ROUNDS)
acc_central = D.accuracy(central, task.x_test, task.y_test)
print(f"centralised plaintext training: test accuracy {acc_central:.3f}")
""",
    """md:
## The API
- `fl.DataOwner(name, x, y, trainer=...)` (or `train_fn=` for custom local training),
- `fl.ModelOwner(params, evaluator_fn=...)`: holds the model, evaluates on its own data,
  and only ever receives the revealed aggregate,
- `fl.Federation(model_owner, data_owners, aggregator, protocol)`: the round loop;
  `protocol=None` is plaintext FedAvg (a trusted server sees every update),
- `fit(rounds, evaluate_every)` returns a `History` (per-round metrics and timings).""",
    """
def run(protocol, aggregator=None, rounds=ROUNDS, owners_data=task.owners, **kw):
    owners = [fl.DataOwner(f"owner{i}", x, y, trainer=trainer, seed=i)
              for i, (x, y) in enumerate(owners_data)]
    model_owner = fl.ModelOwner(params0, evaluator_fn=D.evaluator(task.x_test, task.y_test))
    fed = fl.Federation(model_owner, owners, aggregator or fl.Mean(), protocol=protocol,
                        progress=False, **kw)   # progress=True (default) shows a tqdm bar
    return fed.fit(rounds=rounds, evaluate_every=1)

def eps_text(eps):
    return "not reported (pip install 'spu-lite[dp]')" if eps is None else f"{eps:.1f}"

hist_plain = run(None)
hist_secure = run("aby3")
hist_semi2k = run("semi2k")
for name, h in [("plaintext FedAvg", hist_plain), ("secure aggregation (aby3)", hist_secure),
                ("secure aggregation (semi2k)", hist_semi2k)]:
    print(f"{name:28s} accuracy {h.last_metrics['accuracy']:.3f}  "
          f"{1000 * h.seconds_per_round():.0f} ms/round "
          f"(aggregation {1000 * h.seconds_per_round('aggregate'):.0f} ms)")
""",
    """md:
Secure aggregation gives the same model as plaintext FedAvg (up to fixed-point rounding,
2^-18): averaging is linear, so it costs no accuracy and only a few milliseconds per
round.

## What actually leaves a data owner
A data owner's contribution is a set of secret handles: the ring elements each
computing party holds look uniformly random; only their sum (mod 2^64) encodes the update.""",
    """
backend = fl.SecureBackend("aby3")
alice = fl.DataOwner("alice", *task.owners[0], trainer=trainer, seed=0)
contribution = alice.contribute(params0, backend.channel)
handle = contribution.payload["b1"]
print(handle)
for rank, share in enumerate(handle.shares):
    print(f"party P{rank} holds", [hex(int(p[0])) for p in share.parts])
""",
    """md:
## Differential privacy inside MPC
Secure aggregation hides individual updates, but the aggregate itself can still leak. With
`fl.Mean(dp=fl.DPConfig(clip_norm=C, noise_multiplier=z))` every update is clipped to L2
norm `C` **under MPC**, and Gaussian noise of std `z*C` is added to the sum before it is
revealed (std `z*C/n` on the mean of `n` updates). Each computing party draws an independent
share of the noise (variance `(z*C)^2/3`) and secret-shares it, so nobody knows the total
noise. The privacy loss is reported by dp-accounting's RDP accountant (user-level, every
data owner in every round).""",
    """
dp = fl.DPConfig(clip_norm=1.0, noise_multiplier=0.3, delta=1e-5)
hist_dp = run("aby3", fl.Mean(dp=dp))
print(f"secure + DP: accuracy {hist_dp.last_metrics['accuracy']:.3f}, "
      f"epsilon = {eps_text(hist_dp.records[-1].epsilon)} at delta = {dp.delta}")
""",
    """md:
With only three data owners the noise on the mean is a third of the noise on the sum, so a
useful model needs a small noise multiplier, and the resulting epsilon is far too large to be
a meaningful guarantee. DP-FedAvg pays off with many data owners: the same data split over
30 owners tolerates `z = 1`.""",
    """
task30 = D.digits_task(n_owners=30, seed=0)
hist_dp30 = run("aby3", fl.Mean(dp=fl.DPConfig(clip_norm=1.0, noise_multiplier=1.0)),
                owners_data=task30.owners)
print(f"30 data owners, z = 1.0: accuracy {hist_dp30.last_metrics['accuracy']:.3f}, "
      f"epsilon = {eps_text(hist_dp30.records[-1].epsilon)} at delta = 1e-05")
""",
    """
fig, ax = plt.subplots(figsize=(7, 4))
hist_plain.plot("accuracy", ax=ax, label="plaintext FedAvg")
hist_secure.plot("accuracy", ax=ax, label="secure aggregation (aby3)", linestyle="--")
hist_dp.plot("accuracy", ax=ax, label=f"secure + DP (3 owners, z={dp.noise_multiplier})")
hist_dp30.plot("accuracy", ax=ax, label="secure + DP (30 owners, z=1.0)")
ax.axhline(acc_central, color="gray", linestyle=":", label="centralised")
ax.set_ylim(0.5, 1.0)
ax.legend()
ax.set_title("digits: test accuracy per round")
plt.show()
""",
    """md:
## Other aggregators
- `fl.WeightedMean()` weights updates by the owners' example counts (the counts are secret
  inputs too; only their total is revealed),
- `fl.Custom(fn)` compiles any JAX function of the payloads under MPC,
- `fl.reptile(eps)`: the data owners send their locally trained models and the parties
  compute `old + eps * (mean(models) - old)` (TF Encrypted's Reptile variant).""",
    """
for name, agg in [("weighted mean", fl.WeightedMean()), ("reptile eps=0.5", fl.reptile(0.5))]:
    h = run("aby3", agg, rounds=10)
    print(f"{name:16s} accuracy after 10 rounds: {h.last_metrics['accuracy']:.3f}")
""",
    """md:
## Drop-outs
A data owner that raises or misses the deadline (`timeout=`) is skipped for the round with a
warning; the round completes with the others. A malformed update (wrong structure or shape,
NaN/inf) is refused with an error naming the owner before anything is shared.""",
    """
def flaky(params, x, y, key):
    raise ConnectionError("connection reset")

owners = [fl.DataOwner(f"owner{i}", x, y, trainer=trainer, seed=i)
          for i, (x, y) in enumerate(task.owners)]
owners.append(fl.DataOwner("flaky", *task.owners[0], train_fn=flaky))
fed = fl.Federation(fl.ModelOwner(params0), owners, protocol="aby3", progress=False)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    record = fed.run_round()
print("participants:", record.participants, "| dropped:", record.dropped)
print("warning:", caught[0].message)
""",
    """md:
## Time per round
Local training runs in the data owners' threads; "aggregate" is the MPC part (dealing noise
shares, the clipping and sum program, the scaling program).""",
    """
print(f"{'method':34s} {'accuracy':>8s} {'ms/round':>9s} {'MPC ms':>7s}")
for name, h in [("plaintext FedAvg", hist_plain), ("secure aggregation (aby3)", hist_secure),
                ("secure aggregation (semi2k)", hist_semi2k),
                ("secure + DP (aby3, 3 owners)", hist_dp),
                ("secure + DP (aby3, 30 owners)", hist_dp30)]:
    print(f"{name:34s} {h.last_metrics['accuracy']:8.3f} {1000 * h.seconds_per_round():9.1f} "
          f"{1000 * h.seconds_per_round('aggregate'):7.1f}")
""",
]


def build():
    """The notebook object (cells without outputs)."""
    sys.path.insert(0, str(HERE))
    from make_notebooks import notebook   # same cell conventions as the other tutorials
    return notebook(CELLS)


if __name__ == "__main__":
    nbf.write(build(), PATH)
