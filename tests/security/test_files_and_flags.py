"""Key files, output files, seeds and the trust flag (issue 12, parts 7 and 8)."""
import logging
import os
import stat
import subprocess
import sys

import pytest
import yaml

from spu_lite.runtime.net.auth import CredentialError, create_keypair, load_secret, open_private
from spu_lite.deploy import cli as deploy_cli
from spu_lite.deploy.cluster_file import ClusterFileError, load
from spu_lite.deploy.keygen import keygen
from spu_lite.deploy.launcher import free_ports
from spu_lite.deploy.node import Node


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_secret_key_is_created_0600_without_a_chmod(tmp_path, monkeypatch):
    """Even with umask 0 the secret file is 0600 from its creation on: no chmod after
    the fact (which would leave a window in which it is world-readable)."""
    def no_chmod(*a, **k):
        raise AssertionError("the key must be created private, not chmod-ed afterwards")
    monkeypatch.setattr(os, "chmod", no_chmod)
    old = os.umask(0)
    try:
        pub, sec = create_keypair(str(tmp_path), "alice")
    finally:
        os.umask(old)
    assert mode(sec) == 0o600
    assert mode(pub) & 0o444 == 0o444                               # public: readable
    public, secret = load_secret(sec)
    assert len(public) == 40 and len(secret) == 40


def test_keys_are_never_silently_overwritten(tmp_path):
    _, sec = create_keypair(str(tmp_path), "alice")
    before = open(sec).read()
    with pytest.raises(FileExistsError, match="--force"):
        create_keypair(str(tmp_path), "alice")
    assert open(sec).read() == before
    create_keypair(str(tmp_path), "alice", force=True)
    assert open(sec).read() != before and mode(sec) == 0o600
    keygen(str(tmp_path / "c"), ["alice", "bob"], ports=free_ports(2))
    with pytest.raises(FileExistsError, match="--force"):
        keygen(str(tmp_path / "c"), ["alice", "bob"], ports=free_ports(2))
    keygen(str(tmp_path / "c"), ["alice", "bob"], ports=free_ports(2), force=True)


def test_cli_keygen_refuses_to_overwrite(tmp_path, capsys):
    argv = ["cluster", "keygen", str(tmp_path), "--parties", "alice", "bob"]
    assert deploy_cli.main(argv) == 0
    assert deploy_cli.main(argv) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert deploy_cli.main(argv + ["--force"]) == 0


@pytest.mark.parametrize("bits", [0o640, 0o604, 0o644])
def test_group_or_world_readable_secret_key_is_refused(tmp_path, bits):
    _, sec = create_keypair(str(tmp_path), "alice")
    os.chmod(sec, bits)
    with pytest.raises(CredentialError, match="readable by its group or others"):
        load_secret(sec)
    os.chmod(sec, 0o400)
    load_secret(sec)


def test_private_output_files(tmp_path):
    p = tmp_path / "out.npz"
    p.write_bytes(b"old")
    os.chmod(p, 0o644)
    with open_private(str(p)) as f:        # replaced, not rewritten with the old mode
        f.write(b"new")
    assert mode(p) == 0o600 and p.read_bytes() == b"new"
    with open_private(str(tmp_path / "dump"), append=True) as f:
        f.write(b"x")
    assert mode(tmp_path / "dump") == 0o600


def test_trust_driver_code_must_be_a_yaml_boolean(tmp_path):
    path = keygen(str(tmp_path), ["alice", "bob", "carol"], ports=free_ports(3))
    doc = yaml.safe_load(open(path))
    assert all("trust_driver_code" not in p for p in doc["parties"])    # off by default
    assert load(path).parties[0].trust_driver_code is False
    for bad in ("false", "no", 0, "true"):
        doc["parties"][0]["trust_driver_code"] = bad
        yaml.safe_dump(doc, open(path, "w"))
        with pytest.raises(ClusterFileError, match="YAML boolean"):
            load(path)
    doc["parties"][0]["trust_driver_code"] = True
    yaml.safe_dump(doc, open(path, "w"))
    assert load(path).parties[0].trust_driver_code is True


def test_keygen_writes_trust_only_when_asked(tmp_path):
    argv = ["cluster", "keygen", str(tmp_path / "a"), "--parties", "alice", "bob", "carol"]
    assert deploy_cli.main(argv) == 0
    assert "trust_driver_code" not in (tmp_path / "a" / "cluster.yaml").read_text()
    argv = ["cluster", "keygen", str(tmp_path / "b"), "--parties", "alice", "bob", "carol",
            "--trust-driver-code"]
    assert deploy_cli.main(argv) == 0
    spec = load(str(tmp_path / "b" / "cluster.yaml"))
    assert all(p.trust_driver_code for p in spec.parties)


def test_node_refuses_a_seed_without_the_insecure_flag(tmp_path):
    path = keygen(str(tmp_path), ["alice", "bob", "carol"], seed=5, ports=free_ports(3))
    with pytest.raises(CredentialError, match="--insecure-test-seed"):
        Node(load(path), "alice")
    # the command line says so and exits with an error, before opening any socket
    out = subprocess.run([sys.executable, "-m", "spu_lite.deploy.cli", "node", "--cluster",
                          path, "--party", "alice"], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ))
    assert out.returncode == 1 and "--insecure-test-seed" in out.stderr


def test_seed_flag_and_trust_flag_are_announced(tmp_path, caplog):
    path = keygen(str(tmp_path), ["alice", "bob", "carol"], seed=5, ports=free_ports(3),
                  trust_driver_code=True)
    with caplog.at_level(logging.WARNING, logger="spu_lite.node"):
        node = Node(load(path), "alice", insecure_test_seed=True)
        node.close()
    text = caplog.text
    assert "INSECURE" in text and "trust_driver_code is on" in text


def test_no_warning_for_a_plain_node(tmp_path, caplog):
    path = keygen(str(tmp_path), ["alice", "bob", "carol"], ports=free_ports(3))
    with caplog.at_level(logging.WARNING, logger="spu_lite.node"):
        Node(load(path), "alice").close()
    assert "trust_driver_code" not in caplog.text and "INSECURE" not in caplog.text


def test_seed_must_be_an_integer(tmp_path):
    path = keygen(str(tmp_path), ["alice", "bob", "carol"], ports=free_ports(3))
    doc = yaml.safe_load(open(path))
    doc["seed"] = "7"
    yaml.safe_dump(doc, open(path, "w"))
    with pytest.raises(ClusterFileError, match="seed"):
        load(path)
