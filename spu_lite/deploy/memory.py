"""Freed memory kept for the next job (glibc's malloc), in the driver and the nodes.

A job allocates and frees arrays of its input size several times over (encoding,
shares, sealed frames: about 20 arrays of 512 KiB for one product of 65,536
elements at the driver). glibc hands the free top of its heap back to the kernel as
soon as it exceeds the trim threshold (dynamic, about twice the largest freed array),
so the next job's arrays come back as fresh pages that the kernel must map and zero:
500-800 page faults, about 1 ms of the driver's CPU per job. Raising the thresholds
once (M_MMAP_THRESHOLD: arrays up to 32 MiB come from the heap; M_TRIM_THRESHOLD:
up to 256 MiB of freed heap is kept) makes the pages of one job serve the next. The
cost is memory: a process keeps up to that much freed heap after a large job.

Only on glibc (Linux); elsewhere, or if the operator set MALLOC_MMAP_THRESHOLD_ /
MALLOC_TRIM_THRESHOLD_ in the environment, nothing changes.
"""
from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20          # glibc's largest (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 256 << 20
_done = []


def keep_freed_memory() -> bool:
    """Apply the thresholds once per process; True if they are in effect."""
    if _done:
        return _done[0]
    ok = False
    if sys.platform.startswith("linux") and not any(
            k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        try:
            libc = ctypes.CDLL(None)
            ok = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
                bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
        except (OSError, AttributeError):      # not glibc (e.g. musl has no mallopt)
            ok = False
    _done.append(ok)
    return ok
