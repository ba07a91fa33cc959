"""Federated learning with secure aggregation (and differential privacy inside MPC).

    import spu_lite.fl as fl
    owners = [fl.DataOwner(f"owner{i}", x, y, trainer=fl.LocalTrainer(loss_fn, steps=20))
              for i, (x, y) in enumerate(splits)]
    model_owner = fl.ModelOwner(params, evaluator_fn=evaluate)
    fed = fl.Federation(model_owner, owners, aggregator=fl.Mean(), protocol="aby3")
    history = fed.fit(rounds=20, evaluate_every=2)

Modules: owners (DataOwner, ModelOwner), trainer (local plaintext training),
aggregators (Mean, WeightedMean, Custom, reptile), clipping (L2 clipping under MPC),
dp (DPConfig, distributed Gaussian noise, epsilon), backends (MPC or plaintext),
validation (malformed updates), federation (the round loop), history, digits (a
small example task). See docs/federated.md.
"""
from .aggregators import Aggregator, Custom, Mean, WeightedMean, reptile
from .backends import PlainBackend, SecureBackend
from .dp import DPConfig, epsilon
from .federation import Federation
from .history import History, RoundRecord
from .owners import DataOwner, ModelOwner, SharedUpdate
from .trainer import LocalTrainer
from .validation import UpdateError

__all__ = ["Aggregator", "Custom", "Mean", "WeightedMean", "reptile", "PlainBackend",
           "SecureBackend", "DPConfig", "epsilon", "Federation", "History", "RoundRecord",
           "DataOwner", "ModelOwner", "SharedUpdate", "LocalTrainer", "UpdateError"]
