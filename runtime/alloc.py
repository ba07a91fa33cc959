"""Allocator tuning for the runtime's array temporaries.

Every kernel makes fresh arrays of about a megabyte per 128k elements (shares, masks,
products). glibc serves allocations above M_MMAP_THRESHOLD (128 KiB, adjusted upwards
only after frees) with fresh mmap pages and gives freed memory back to the OS above
M_TRIM_THRESHOLD, so many such arrays pay page faults and zero-filling in the kernel
each time: measured, about a quarter of the CPU time of an exp on 2^17 elements under
aby3. Raising both thresholds keeps these arrays in the heap and reuses the pages
(arrays above 32 MiB, the largest threshold glibc allows, are still mmap'd).
Cost: up to 256 MiB of freed heap may stay mapped per arena.

Linux with glibc only; a no-op elsewhere. SPU_LITE_MALLOPT=0 turns it off.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 256 << 20
TOP_PAD = 16 << 20

_done = None


def tune_allocator() -> bool:
    """Apply the thresholds once per process; True if glibc accepted them."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("SPU_LITE_MALLOPT", "1") == "0" or not sys.platform.startswith("linux"):
        return _done
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):     # not glibc (e.g. musl has no mallopt)
        return _done
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = all(mallopt(p, v) == 1 for p, v in ((M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                                                (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                                                (M_TOP_PAD, TOP_PAD)))
    return _done
