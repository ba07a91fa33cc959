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

from spu_lite.runtime.net.auth import create_keypair

_HEADER = """\
# spu-lite cluster file (written by `spu-lite cluster keygen`).
# Every party's secret key is in keys/NAME.key_secret: in a real deployment each
# organisation keeps its own and shares only public keys. policy: log runs every job the
# driver sends and logs it; a real deployment uses the default, allowlist, or rules (see
# docs/security.md).
"""
_TRUST_NOTE = """\
# trust_driver_code: true lets the driver ship loader code that the party runs (only
# between parties that trust the driver's code; see docs/deployment.md).
"""


def keygen_one(directory: str, name: str, force: bool = False) -> str:
    """Write NAME.key / NAME.key_secret in directory (existing keys are an error
    unless force); return the public key (z85)."""
    pub, _ = create_keypair(directory, name, force)
    return zmq.auth.load_certificate(pub)[0].decode()


def keygen(directory: str, parties: List[str], dealer: Optional[str] = None,
           base_port: int = 7100, host: str = "127.0.0.1", protocol: Optional[str] = None,
           timeout: float = 60.0, seed: Optional[int] = None,
           trust_driver_code: bool = False, ports: Optional[List[int]] = None,
           force: bool = False) -> str:
    """Keys for every party (and the dealer and the driver) and DIR/cluster.yaml.
    Ports: base_port, base_port + 1, ... unless `ports` lists one per name.
    `trust_driver_code: true` is written only when asked for; existing keys or an
    existing cluster.yaml are an error (FileExistsError) unless force."""
    names = list(parties) + ([dealer] if dealer else [])
    if len(set(names)) != len(names) or "driver" in names:
        raise ValueError("party names must be unique and not 'driver'")
    protocol = protocol or ("semi2k" if dealer else "aby3")
    if protocol == "semi2k_ot" and (dealer or len(parties) != 2):
        raise ValueError("semi2k_ot (no dealer) takes exactly 2 parties and no dealer")
    keydir = os.path.join(directory, "keys")
    path = os.path.join(directory, "cluster.yaml")
    existing = [p for p in [path] + [os.path.join(keydir, f"{n}.key{s}") for n in
                                     names + ["driver"] for s in ("", "_secret")]
                if os.path.lexists(p)]
    if existing and not force:
        raise FileExistsError(f"{existing[0]} exists; refusing to overwrite keys or the "
                              f"cluster file (use --force to replace them)")
    header = _HEADER + (_TRUST_NOTE if trust_driver_code else "")
    lines = [header, f"protocol: {protocol}", "field: 64", "fxp_bits: 18",
             f"timeout: {timeout:g}", f"seed: {'null' if seed is None else int(seed)}",
             "parties:"]
    for i, name in enumerate(names):
        lines += [f"  - name: {name}",
                  f"    address: {host}:{ports[i] if ports else base_port + i}",
                  f"    public_key: \"{keygen_one(keydir, name, force)}\"",
                  f"    secret_key_file: keys/{name}.key_secret",
                  f"    output_dir: out/{name}"]
        if name != dealer:
            if trust_driver_code:
                lines.append("    trust_driver_code: true")
            lines.append("    policy: log")
    if dealer:
        lines.append(f"dealer: {dealer}")
    lines += ["driver:", f"  public_key: \"{keygen_one(keydir, 'driver', force)}\"",
              "  secret_key_file: keys/driver.key_secret", ""]
    if force and os.path.lexists(path):
        os.unlink(path)
    with open(path, "x") as f:
        f.write("\n".join(lines))
    return path
