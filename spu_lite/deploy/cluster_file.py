"""The cluster file: one YAML document every organisation holds a copy of.

    protocol: aby3            # or semi2k (then `dealer:` names the dealer's entry), or
                              # semi2k_ot (exactly two parties, no dealer: they make
                              # the correlations themselves by oblivious transfer)
    field: 64                 # ring bits, 64 or 32
    fxp_bits: 18              # fractional bits of fixed-point values
    timeout: 60               # seconds to wait for a peer before failing, naming it
    seed: null                # tests only: deterministic keys and shares (a node
                              # refuses it unless started with --insecure-test-seed)
    max_message_mb: 1024      # optional: larger messages (peers, driver) are dropped
    net: null                 # optional: emulated links, "rtt=20ms,bw=100mbit", "lan", "wan"
    sealed_data: true         # optional, a YAML boolean: data travels AES-256-GCM-sealed
                              # on a second TCP port per node (chosen by the OS), keyed
                              # over CURVE; false: everything on `address`, under CURVE
    max_pool_mb: 1024         # optional, semi2k_ot: memory for correlations made ahead
                              # of jobs (`spu-lite cluster precompute`), per party
    parties:
      - name: alice
        address: alice.example.org:7001   # where the others connect
        listen: 0.0.0.0:7001              # optional: where this node binds (default address)
        public_key: "z85 key, 40 chars"
        secret_key_file: keys/alice.key_secret   # read only by alice's own node
        trust_driver_code: false          # optional, a YAML boolean: run loaders the driver ships
        loaders: {patients: "hospital_io:load_patients"}   # optional: named loaders
        output_dir: results/alice         # optional: where outputs revealed to alice go
        policy: allowlist                 # optional: which jobs alice runs (policy.py):
                                          #   allowlist (default), log, {rules: [...]}
        state_dir: state/alice            # optional: pending programs, decisions, job log
    dealer: dave              # semi2k only
    driver:
      public_key: "..."
      secret_key_file: keys/driver.key_secret   # read only by the driver

Relative paths are relative to the cluster file. Ranks: the computing parties in file
order are 0..n-1; the dealer (semi2k) is rank n.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import yaml

from spu_lite.compiler.ir.fields import DEFAULT_FXP_BITS
from spu_lite.runtime.cluster import ClusterConfig
from spu_lite.runtime.link import LinkModel

from .policy import Policy, parse_policy

DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_MESSAGE_MB = 1024.0     # a job carries all its inputs: big models need room
DEFAULT_MAX_POOL_MB = 1024.0        # semi2k_ot: precomputed correlations kept per party


class ClusterFileError(ValueError):
    """The cluster file is missing something or contradicts itself."""


@dataclass
class PartySpec:
    name: str
    address: str
    public_key: bytes
    secret_key_file: Optional[str] = None
    listen: Optional[str] = None
    trust_driver_code: bool = False
    loaders: Dict[str, str] = field(default_factory=dict)
    output_dir: Optional[str] = None
    policy: Policy = field(default_factory=Policy)
    state_dir: Optional[str] = None


@dataclass
class ClusterSpec:
    protocol: str
    parties: List[PartySpec]          # computing parties in rank order, then the dealer
    dealer: Optional[str]
    driver_key: bytes
    driver_secret_file: Optional[str]
    field: int = 64
    fxp_bits: int = 18
    timeout: float = DEFAULT_TIMEOUT
    seed: Optional[int] = None
    path: Optional[str] = None
    max_message_mb: float = DEFAULT_MAX_MESSAGE_MB
    net: Optional[str] = None          # emulated links (runtime.link.LinkModel), None: real
    max_pool_mb: float = DEFAULT_MAX_POOL_MB
    sealed_data: bool = True           # bulk data AES-GCM-sealed on a second port

    @property
    def max_message_bytes(self) -> int:
        return int(self.max_message_mb * 2 ** 20)

    @property
    def nparties(self) -> int:
        return len(self.parties) - (1 if self.dealer else 0)

    @property
    def names(self) -> Dict[int, str]:
        return {r: p.name for r, p in enumerate(self.parties)}

    def rank(self, name: str) -> int:
        for r, p in enumerate(self.parties):
            if p.name == name:
                return r
        raise ClusterFileError(f"unknown party {name!r}; the cluster has "
                               f"{', '.join(p.name for p in self.parties)}")

    def endpoints(self) -> Dict[int, Tuple[str, str, bytes]]:
        """rank -> (name, address, public key) of every node."""
        return {r: (p.name, p.address, p.public_key) for r, p in enumerate(self.parties)}

    def allowed_keys(self) -> Dict[bytes, str]:
        keys = {p.public_key: p.name for p in self.parties}
        keys[self.driver_key] = "driver"
        return keys

    def config(self) -> ClusterConfig:
        return ClusterConfig(protocol=self.protocol, nparties=self.nparties, field=self.field,
                             fxp_bits=self.fxp_bits, seed=self.seed, timeout=self.timeout,
                             net=self.net)


def _key(v, where) -> bytes:
    k = (v or "").encode() if isinstance(v, str) else v
    if not isinstance(k, bytes) or len(k) != 40:
        raise ClusterFileError(f"{where}: public_key must be a 40-character z85 CURVE key")
    return k


def _bool(v, where: str) -> bool:
    """A YAML boolean (true/false/yes/no unquoted); anything else, e.g. the string
    "false" (which Python's bool() would take for True), is an error."""
    if not isinstance(v, bool):
        raise ClusterFileError(f"{where} must be a YAML boolean (true or false, unquoted), "
                               f"not {v!r}")
    return v


def _path(base: str, p):
    if not p:
        return None
    p = os.path.expanduser(str(p))
    return p if os.path.isabs(p) else os.path.normpath(os.path.join(base, p))


def _policy(v, name: str) -> Policy:
    try:
        return parse_policy(v, name)
    except ValueError as e:
        raise ClusterFileError(str(e)) from None


def parse(doc: dict, base: str = ".", path: Optional[str] = None) -> ClusterSpec:
    if not isinstance(doc, dict):
        raise ClusterFileError("the cluster file must be a YAML mapping")
    protocol = doc.get("protocol", "aby3")
    entries = doc.get("parties") or []
    if not isinstance(entries, list) or not entries:
        raise ClusterFileError("`parties:` must list the parties")
    parties = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not e.get("name") or not e.get("address"):
            raise ClusterFileError(f"parties[{i}] needs a name and an address host:port")
        name = str(e["name"])
        if name == "driver":
            raise ClusterFileError("`driver` is reserved; give the party another name")
        loaders = e.get("loaders") or {}
        if not isinstance(loaders, dict):
            raise ClusterFileError(f"{name}: loaders must map names to 'module:function'")
        parties.append(PartySpec(name, str(e["address"]), _key(e.get("public_key"), name),
                                 _path(base, e.get("secret_key_file")), e.get("listen"),
                                 _bool(e.get("trust_driver_code", False),
                                       f"{name}: trust_driver_code"),
                                 {str(k): str(v) for k, v in loaders.items()},
                                 _path(base, e.get("output_dir")),
                                 _policy(e.get("policy"), name),
                                 _path(base, e.get("state_dir") or os.path.join("state", name))))
    names = [p.name for p in parties]
    if len(set(names)) != len(names):
        raise ClusterFileError("party names must be unique")
    if len({p.address for p in parties}) != len(parties):
        raise ClusterFileError("party addresses must be unique")
    dealer = doc.get("dealer")
    if dealer is not None:
        if dealer not in names:
            raise ClusterFileError(f"dealer {dealer!r} is not one of the parties")
        parties = [p for p in parties if p.name != dealer] + [parties[names.index(dealer)]]
    driver = doc.get("driver") or {}
    spec = ClusterSpec(protocol, parties, dealer, _key(driver.get("public_key"), "driver"),
                       _path(base, driver.get("secret_key_file")),
                       int(doc.get("field", 64)),
                       int(doc.get("fxp_bits", DEFAULT_FXP_BITS.get(doc.get("field", 64), 18))),
                       float(doc.get("timeout", DEFAULT_TIMEOUT)), doc.get("seed"), path,
                       float(doc.get("max_message_mb", DEFAULT_MAX_MESSAGE_MB)),
                       doc.get("net") or None,
                       float(doc.get("max_pool_mb", DEFAULT_MAX_POOL_MB)),
                       _bool(doc.get("sealed_data", True), "sealed_data"))
    _check(spec)
    return spec


def _check(spec: ClusterSpec) -> None:
    try:
        from spu_lite.runtime.protocols import get_protocol
        cls = get_protocol(spec.protocol)
    except ValueError as e:
        raise ClusterFileError(str(e)) from None
    if cls.needs_dealer and not spec.dealer:
        raise ClusterFileError(f"{spec.protocol} needs a dealer: add `dealer: NAME` (two "
                               f"parties and no third: `protocol: semi2k_ot`)")
    if spec.dealer and not cls.needs_dealer:
        raise ClusterFileError(f"{spec.protocol} has no dealer; remove `dealer:`")
    if spec.protocol == "semi2k_ot" and spec.nparties != 2:
        raise ClusterFileError(f"semi2k_ot (two parties, no dealer) needs exactly 2 parties; "
                               f"the file lists {spec.nparties}: "
                               f"{', '.join(p.name for p in spec.parties)}")
    try:
        spec.config().parties
    except ValueError as e:
        raise ClusterFileError(str(e)) from None
    if spec.field not in (32, 64):
        raise ClusterFileError("field must be 64 or 32")
    if not spec.timeout > 0:
        raise ClusterFileError("timeout must be positive (seconds)")
    if not 0 < spec.max_message_mb <= 2 ** 20:
        raise ClusterFileError("max_message_mb must be positive (megabytes)")
    if not 0 <= spec.max_pool_mb <= 2 ** 30:
        raise ClusterFileError("max_pool_mb must be zero or positive (megabytes)")
    if spec.seed is not None and (isinstance(spec.seed, bool) or not isinstance(spec.seed, int)):
        raise ClusterFileError(f"seed must be an integer or null, not {spec.seed!r}")
    try:
        LinkModel.parse(spec.net)
    except ValueError as e:
        raise ClusterFileError(str(e)) from None


def load(path: str) -> ClusterSpec:
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise ClusterFileError(f"cannot read cluster file: {e}") from None
    except yaml.YAMLError as e:
        raise ClusterFileError(f"{path}: not valid YAML: {e}") from None
    return parse(doc, os.path.dirname(os.path.abspath(path)), os.path.abspath(path))
