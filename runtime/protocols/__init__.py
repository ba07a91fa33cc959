"""Protocols behind the kernel interface (see base.py)."""
from .base import PartyContext, Protocol, Share  # noqa: F401 (the interface)

PROTOCOL_NAMES = ("ref2k", "semi2k", "aby3", "semi2k_ot")


def get_protocol(name: str):
    """The Protocol class registered under `name`."""
    from .aby3 import Aby3
    from .ref2k import Ref2k
    from .semi2k import Semi2k
    from .semi2k_ot import Semi2kOT
    table = {"ref2k": Ref2k, "semi2k": Semi2k, "aby3": Aby3, "semi2k_ot": Semi2kOT}
    if name not in table:
        raise ValueError(f"unknown protocol {name!r}; choose one of {sorted(table)}")
    return table[name]
