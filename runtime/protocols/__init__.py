"""Protocols behind the kernel interface (see base.py)."""
from .base import Protocol, Share, PartyContext


def get_protocol(name: str):
    from .ref2k import Ref2k
    from .semi2k import Semi2k
    table = {"ref2k": Ref2k, "semi2k": Semi2k}
    from .aby3 import Aby3
    table["aby3"] = Aby3
    if name not in table:
        raise ValueError(f"unknown protocol {name!r}; choose one of {sorted(table)}")
    return table[name]


PROTOCOL_NAMES = ("ref2k", "semi2k", "aby3")
