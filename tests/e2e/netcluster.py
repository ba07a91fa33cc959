"""Helpers for the networked-cluster tests: a cluster of real node processes on
127.0.0.1 (free ports, fresh keys), always stopped in a finally."""
from __future__ import annotations

import contextlib

import yaml

from spu_lite.deploy.keygen import keygen
from spu_lite.deploy.launcher import Launcher, free_ports


def make_cluster_file(tmp_path, parties, dealer=None, timeout=30.0, seed=7, trust=True,
                      edit=None) -> str:
    """timeout: how long a node waits for a peer; generous, so that a loaded machine
    (two test workers, other work) cannot fail a test by a slow peer. The tests of the
    timeout itself pass their own."""
    n = len(parties) + (1 if dealer else 0)
    path = keygen(str(tmp_path), parties, dealer, timeout=timeout, seed=seed,
                  trust_driver_code=trust, ports=free_ports(n))
    if edit:
        with open(path) as f:
            doc = yaml.safe_load(f)
        edit(doc)
        with open(path, "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
    return path


def with_policies(**by_name):
    """An `edit` for make_cluster_file: these parties' `policy:` entries."""
    def edit(doc):
        for entry in doc["parties"]:
            if entry["name"] in by_name:
                entry["policy"] = by_name[entry["name"]]
    return edit


@contextlib.contextmanager
def running(path, tmp_path, env=None, names=None):
    with open(path) as f:
        seeded = yaml.safe_load(f).get("seed") is not None
    launcher = Launcher(path, names=names, env=env, log_dir=str(tmp_path / "logs"),
                        insecure_test_seed=seeded)
    try:
        launcher.start()
        yield launcher
    finally:
        launcher.stop()


def log_of(tmp_path, name) -> str:
    with open(tmp_path / "logs" / f"{name}.log", errors="replace") as f:
        return f.read()
