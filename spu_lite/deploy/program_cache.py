"""Compiled programs kept at a node by the sha256 of their IR text, so the driver
ships and the node parses a program once, not on every job.

The driver sends `program_sha` with every job and the IR text only the first time
in a session (ProgramShipping); a node that does not hold that digest (restarted,
or the program fell out of its cache) fails the job with ProgramNotCached, and the
driver sends it again with the text. A node checks that the text it receives hashes
to the digest it is filed under, so a digest always names exactly one program.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Dict, Set, Tuple

from spu_lite.compiler.ir import Program, parse_program

from .policy import ir_sha256

MAX_PROGRAMS = 16


class ProgramNotCached(RuntimeError):
    """The job named a program by digest that this node does not hold."""


def ir_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class ProgramCache:
    """digest -> (IR text, parsed Program, sha256 of the canonical IR for consent's
    policy), least recently used out beyond `size`."""

    def __init__(self, size: int = MAX_PROGRAMS):
        self.size = size
        self.items: "OrderedDict[str, Tuple[str, Program, str]]" = OrderedDict()

    def resolve(self, header: dict) -> Tuple[Program, str]:
        """The job's (program, ir_sha256). Fills header["program"] with the IR text
        when the job named it by digest only, so whatever reads the header (the
        consent policy) sees the same text."""
        text = header.get("program")
        sha = str(header.get("program_sha") or "")
        if text is not None:
            digest = ir_digest(text)
            if sha and sha != digest:
                raise ValueError("the program text does not match its digest")
            hit = self.items.get(digest)
            if hit is None:
                hit = self.items[digest] = (text, parse_program(text), ir_sha256(text))
                while len(self.items) > self.size:
                    self.items.popitem(last=False)
            self.items.move_to_end(digest)
            return hit[1], hit[2]
        hit = self.items.get(sha)
        if hit is None:
            raise ProgramNotCached(f"program {sha[:12]} is not cached here")
        self.items.move_to_end(sha)
        header["program"] = hit[0]
        return hit[1], hit[2]


class ProgramShipping:
    """The driver's side: which program digests each node acknowledged this session,
    and the IR text and digest of the programs it ran lately (printing and hashing
    the IR of a large program on every job costs milliseconds; a compiled Program is
    not changed afterwards, so they are kept by the object, which is kept alive)."""

    def __init__(self):
        self.session = None
        self.acked: Dict[int, Set[str]] = {}
        self._texts: "OrderedDict[int, Tuple[Program, str, str]]" = OrderedDict()

    def text_of(self, program: Program) -> Tuple[str, str]:
        """(IR text, its digest) of `program`."""
        hit = self._texts.get(id(program))
        if hit is None or hit[0] is not program:
            text = program.text
            hit = self._texts[id(program)] = (program, text, ir_digest(text))
            while len(self._texts) > MAX_PROGRAMS:
                self._texts.popitem(last=False)
        self._texts.move_to_end(id(program))
        return hit[1], hit[2]

    def header(self, session: str, rank: int, text: str, digest: str) -> dict:
        if session != self.session:
            self.session, self.acked = session, {}
        if digest in self.acked.get(rank, ()):
            return {"program_sha": digest}
        return {"program_sha": digest, "program": text}

    def acknowledge(self, ranks, digest: str) -> None:
        for r in ranks:
            self.acked.setdefault(r, set()).add(digest)

    def forget(self) -> None:
        self.session, self.acked = None, {}
