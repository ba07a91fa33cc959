"""Networked links between party processes: ZeroMQ with CURVE (authenticated,
encrypted) and bulk data sealed with AES-256-GCM under keys sent over CURVE; the same
Transport interface as the in-memory links (runtime.link).

    wire.py       payloads (arrays, tuples, Shares, bytes) <-> zmq multipart frames
    auth.py       CURVE key files and the ZAP authenticator (only the cluster's keys)
    sealed.py     AES-256-GCM sealed frames: offers, per-link counters, replay checks
    mailbox.py    per-peer inboxes keyed by job id: timeouts and aborts name the peer
    endpoint.py   one party's sockets: ROUTER for inbound (CURVE, and plain for sealed
                  data), DEALER per peer, io thread
    transport.py  NetTransport: Transport.send/recv over an Endpoint
    client.py     the driver's side: DEALER per node, requests, replies, liveness
"""
