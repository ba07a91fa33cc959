"""`spu-lite cluster keygen`: key pairs plus a cluster file, for trying a cluster out
on one machine (every party on 127.0.0.1, consecutive ports).

In a real deployment each organisation runs `keygen_one` (or the same command with a
single party) on its own machine, keeps NAME.key_secret, and sends only the public
key (NAME.key, or the `public_key:` line) to whoever assembles the cluster file.
"""
from __future__ import annotations

import os
from typing import List, Optional

import zmq.auth

from runtime.net.auth import create_keypair

_HEADER = """\
# spu-lite cluster file (written by `spu-lite cluster keygen`).
# Every party's secret key is in keys/NAME.key_secret: in a real deployment each
# organisation keeps its own and shares only public keys. trust_driver_code: true lets
# the driver ship loader code to the party (fine on one machine; see docs/deployment.md).
# policy: log runs every job the driver sends and logs it; a real deployment uses the
# default, allowlist, or rules (see docs/security.md).
"""


def keygen_one(directory: str, name: str) -> str:
    """Write NAME.key / NAME.key_secret in directory; return the public key (z85)."""
    pub, _ = create_keypair(directory, name)
    return zmq.auth.load_certificate(pub)[0].decode()


def keygen(directory: str, parties: List[str], dealer: Optional[str] = None,
           base_port: int = 7100, host: str = "127.0.0.1", protocol: Optional[str] = None,
           timeout: float = 60.0, seed: Optional[int] = None,
           trust_driver_code: bool = True, ports: Optional[List[int]] = None) -> str:
    """Keys for every party (and the dealer and the driver) and DIR/cluster.yaml.
    Ports: base_port, base_port + 1, ... unless `ports` lists one per name."""
    names = list(parties) + ([dealer] if dealer else [])
    if len(set(names)) != len(names) or "driver" in names:
        raise ValueError("party names must be unique and not 'driver'")
    protocol = protocol or ("semi2k" if dealer else "aby3")
    keydir = os.path.join(directory, "keys")
    lines = [_HEADER, f"protocol: {protocol}", "field: 64", "fxp_bits: 18",
             f"timeout: {timeout:g}", f"seed: {'null' if seed is None else int(seed)}",
             "parties:"]
    for i, name in enumerate(names):
        lines += [f"  - name: {name}",
                  f"    address: {host}:{ports[i] if ports else base_port + i}",
                  f"    public_key: \"{keygen_one(keydir, name)}\"",
                  f"    secret_key_file: keys/{name}.key_secret",
                  f"    output_dir: out/{name}"]
        if name != dealer:
            lines.append(f"    trust_driver_code: {'true' if trust_driver_code else 'false'}")
            lines.append("    policy: log")
    if dealer:
        lines.append(f"dealer: {dealer}")
    lines += ["driver:", f"  public_key: \"{keygen_one(keydir, 'driver')}\"",
              "  secret_key_file: keys/driver.key_secret", ""]
    path = os.path.join(directory, "cluster.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path
