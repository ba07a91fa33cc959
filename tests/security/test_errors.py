"""Errors carry no secret-derived values to other parties or the driver (issue 12,
part 4): they name the rule and the input; the owner logs the detail locally."""
import logging
import os

import numpy as np
import pytest

import spu_lite as spu
import spu_lite.fl as fl
from spu_lite.runtime.ring import RangeError, Ring
from spu_lite.deploy.driver import NetworkCluster
from spu_lite.deploy.errors import public_reason
from spu_lite.deploy.handles import party
from spu_lite.codec import InputError
from tests.e2e.netcluster import log_of, make_cluster_file, running

SECRET_MAGNITUDE = 123456789012345.0          # what an owner's input must not reveal
SECRET_TEXT = "patient 4242 has diagnosis 987654"


def test_range_error_names_the_rule_not_the_value():
    with pytest.raises(RangeError) as e:
        Ring(64).encode(np.array([1.0, SECRET_MAGNITUDE]), 18)
    assert "1.235e+14" in str(e.value)                        # the owner's own detail
    assert "1.235e+14" not in e.value.public_reason
    assert "fixed-point range" in e.value.public_reason


def test_public_reason_withholds_unknown_exception_text():
    msg = public_reason(ValueError(SECRET_TEXT), "alice")
    assert "987654" not in msg and "ValueError" in msg and "alice's log" in msg
    err = InputError("input x: input magnitude 1.235e+14 is outside ...")
    err.public_reason = "input x: input is outside the fixed-point range"
    assert "1.235e+14" not in public_reason(err, "alice")


def _network_loaders(tmp_path):
    mod = tmp_path / "owner_io.py"
    mod.write_text("import numpy as np\n"
                   f"def big():\n    return np.array([1.0, {SECRET_MAGNITUDE!r}])\n"
                   f"def boom():\n    raise ValueError({SECRET_TEXT!r})\n"
                   "def fine():\n    return np.array([1.0, 2.0])\n")

    def edit(doc):
        doc["parties"][0]["loaders"] = {"big": "owner_io:big", "boom": "owner_io:boom",
                                        "fine": "owner_io:fine"}
    return edit


@pytest.mark.slow
def test_owner_errors_reach_nobody_else(tmp_path):
    """An out-of-range input and a loader exception at alice: the driver's error and
    the peers' logs name the rule (or the exception type), never the value or the
    loader's text; alice's own log has the detail."""
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"], seed=None, trust=False,
                             edit=_network_loaders(tmp_path))
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd()])}
    errors = []
    with running(path, tmp_path, env=env):
        net = NetworkCluster(path)
        try:
            f = spu.jit(lambda a: a.sum(), cluster=net)
            for loader in ("big", "boom"):
                with pytest.raises(Exception) as e:
                    f(party("alice")(loader)())
                errors.append(str(e.value))
            assert np.isclose(f(party("alice")("fine")()), 3.0, atol=1e-4)   # still serving
        finally:
            net.close()
    assert "fixed-point range" in errors[0] and "ValueError" in errors[1]
    for text in errors + [log_of(tmp_path, "bob"), log_of(tmp_path, "carol")]:
        assert "1.235e+14" not in text and "1.234" not in text
        assert "987654" not in text and "4242" not in text
    alice = log_of(tmp_path, "alice")
    assert "1.235e+14" in alice and "987654" in alice


def _owner(name, update, seed):
    return fl.DataOwner(name, np.zeros((3, 1)), np.zeros(3), seed=seed,
                        train_fn=lambda p, *_: {k: p[k] + update[k] for k in p})


def _model():
    return {"w": np.zeros((6, 4), np.float32), "b": np.zeros(4, np.float32)}


@pytest.mark.parametrize("bad,rule,secret", [
    ({"w": np.full((6, 4), 1000.0), "b": np.zeros(4)}, "L2 norm bound", "4899"),
    ({"w": np.full((6, 4), 3e13), "b": np.zeros(4)}, "fixed-point range", "3e+13"),
    ({"w": np.zeros((6, 4)), "b": np.array([np.nan, np.nan, 0, 0])}, "NaN or inf", "2 NaN"),
])
def test_fl_drop_reasons_name_the_rule_only(bad, rule, secret, caplog):
    rng = np.random.default_rng(0)
    good = [{"w": rng.normal(size=(6, 4)) * 0.1, "b": rng.normal(size=4) * 0.1}
            for _ in range(2)]
    owners = [_owner("alice", good[0], 1), _owner("bob", good[1], 2), _owner("eve", bad, 3)]
    mo = fl.ModelOwner(_model())
    fed = fl.Federation(mo, owners, aggregator=fl.Mean(clip_norm=1.0), protocol="ref2k",
                        on_malformed="skip", progress=False, seed=0)
    with caplog.at_level(logging.WARNING, logger="spu_lite.fl.owner"), \
            pytest.warns(RuntimeWarning, match="'eve' dropped out") as w:
        rec = fed.run_round()
    reason = rec.dropped["eve"]
    assert rule in reason and secret not in reason
    assert all(secret not in str(x.message) for x in w)
    assert secret in caplog.text                        # eve's own log has the detail


def test_fl_owner_exception_text_is_not_forwarded(caplog):
    def train(p, *_):
        raise ConnectionError(SECRET_TEXT)
    owners = [_owner("alice", {"w": np.ones((6, 4)), "b": np.ones(4)}, 1),
              _owner("bob", {"w": np.ones((6, 4)), "b": np.ones(4)}, 2),
              fl.DataOwner("carol", np.zeros((3, 1)), np.zeros(3), train_fn=train)]
    fed = fl.Federation(fl.ModelOwner(_model()), owners, protocol="ref2k", progress=False,
                        seed=0)
    with caplog.at_level(logging.WARNING, logger="spu_lite.fl.owner"), \
            pytest.warns(RuntimeWarning, match="'carol' dropped out.*ConnectionError"):
        rec = fed.run_round()
    assert "987654" not in rec.dropped["carol"] and "ConnectionError" in rec.dropped["carol"]
    assert "987654" in caplog.text


def test_in_process_noise_is_drawn_by_the_coordinator(monkeypatch):
    """What the docs say the in-process simulation does not separate: every DP noise
    draw runs in the coordinator's thread (on real nodes each node draws its own:
    tests/e2e/test_fl_network.py)."""
    import threading

    from spu_lite.fl import dp
    threads = []
    orig = dp.gaussian
    monkeypatch.setattr(dp, "gaussian", lambda *a, **k: threads.append(
        threading.current_thread()) or orig(*a, **k))
    owners = [_owner(n, {"w": np.ones((6, 4)) * 0.01, "b": np.ones(4) * 0.01}, i)
              for i, n in enumerate(("alice", "bob"))]
    agg = fl.Mean(dp=fl.DPConfig(clip_norm=1.0, noise_multiplier=0.5))
    fed = fl.Federation(fl.ModelOwner(_model()), owners, aggregator=agg, protocol="aby3",
                        progress=False, seed=0)
    fed.run_round(evaluate=False)
    assert len(threads) == fed.backend.nparties * 2          # one per party per leaf
    assert set(threads) == {threading.current_thread()}
