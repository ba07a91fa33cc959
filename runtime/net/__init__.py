"""Networked links between party processes: ZeroMQ with CURVE (authenticated,
encrypted), the same Transport interface as the in-memory links (runtime.link).

    wire.py       payloads (arrays, tuples, Shares, bytes) <-> zmq multipart frames
    auth.py       CURVE key files and the ZAP authenticator (only the cluster's keys)
    mailbox.py    per-peer inboxes keyed by job id: timeouts and aborts name the peer
    endpoint.py   one party's sockets: ROUTER for inbound, DEALER per peer, io thread
    transport.py  NetTransport: Transport.send/recv over an Endpoint
    client.py     the driver's side: DEALER per node, requests, replies, liveness
"""
