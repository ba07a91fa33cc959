"""CURVE credentials and the ZAP authenticator.

Every party and the driver has a CURVE key pair (Curve25519). Key files are the
standard ZeroMQ certificate files written by `zmq.auth.create_certificates`:
`NAME.key` (public key only, safe to hand out) and `NAME.key_secret` (both keys, keep
private, mode 0600).

A node's listening (ROUTER) socket is a CURVE server: the handshake proves that the
server holds the secret key matching the public key the client expects, and the ZAP
handler below accepts a client only if its public key is one of the cluster's. The
handler names the authenticated client: every message received carries the
`User-Id` property set to the name of the party (or "driver") that owns the key, so
a receiver knows who sent a message without trusting anything in the message itself.
"""
from __future__ import annotations

import logging
import os
from typing import Dict, Tuple

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

log = logging.getLogger("spu_lite.net")


class CredentialError(RuntimeError):
    """Missing or unreadable key files, or a build of libzmq without CURVE."""


def require_curve() -> None:
    if not zmq.has("curve"):
        raise CredentialError("this libzmq has no CURVE support; install pyzmq from wheels "
                              "(they bundle libzmq with libsodium)")


def load_secret(path: str) -> Tuple[bytes, bytes]:
    """(public, secret) z85 keys from a NAME.key_secret file."""
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as e:
        raise CredentialError(f"cannot read key file {path}: {e}") from None
    if not secret:
        raise CredentialError(f"{path} holds no secret key (use the .key_secret file)")
    return public, secret


def create_keypair(directory: str, name: str) -> Tuple[str, str]:
    """Write NAME.key and NAME.key_secret (mode 0600) in directory; return their paths."""
    require_curve()
    os.makedirs(directory, exist_ok=True)
    pub, sec = zmq.auth.create_certificates(directory, name)
    os.chmod(sec, 0o600)
    return pub, sec


class ClusterAuthenticator(ThreadAuthenticator):
    """ZAP handler: CURVE clients whose public key belongs to the cluster, by name."""

    def __init__(self, context: zmq.Context, keys: Dict[bytes, str], owner: str):
        super().__init__(context, log=logging.getLogger("spu_lite.net.zap"))
        self.names = {bytes(k): v for k, v in keys.items()}
        self.owner = owner
        self.refused = 0

    def callback(self, domain: str, key: bytes) -> bool:     # credentials provider
        ok = bytes(key) in self.names
        if not ok:
            self.refused += 1
            log.warning("%s: refused a connection with an unknown CURVE key %s",
                        self.owner, key.decode(errors="replace")[:12] + "...")
        return ok

    def curve_user_id(self, client_public_key: bytes) -> str:
        return self.names.get(zmq.utils.z85.encode(client_public_key), "?")

    def begin(self) -> "ClusterAuthenticator":
        self.start()
        self.configure_curve_callback("*", credentials_provider=self)
        return self


def curve_server(sock: zmq.Socket, public: bytes, secret: bytes) -> None:
    sock.curve_publickey, sock.curve_secretkey = public, secret
    sock.curve_server = True


def curve_client(sock: zmq.Socket, public: bytes, secret: bytes, server_public: bytes) -> None:
    sock.curve_publickey, sock.curve_secretkey = public, secret
    sock.curve_serverkey = server_public
