"""Allocator tuning (runtime/alloc.py): applied once per process on Linux/glibc, and it
keeps the megabyte temporaries of party threads in the heap instead of fresh pages."""
import pathlib
import subprocess
import sys
import textwrap

import pytest

from spu_lite.runtime import alloc

ROOT = pathlib.Path(__file__).parents[2]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")

# Three threads (like three parties) each hold ten arrays of 1 MiB; glibc's count of
# chunks it served with mmap (mallinfo2().hblks, over all arenas) says where they went:
# a fresh mmap (page faults and zero-filling on every such allocation) or the heap.
_MMAPPED = textwrap.dedent("""
    import ctypes, ctypes.util, threading, numpy as np
    from spu_lite.runtime.alloc import tune_allocator
    tune_allocator()
    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks",
                    "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    before, held = libc.mallinfo2().hblks, []
    def work():
        held.extend(np.ones(1 << 17, np.uint64) for _ in range(10))
    th = [threading.Thread(target=work) for _ in range(3)]
    [t.start() for t in th]; [t.join() for t in th]
    print(libc.mallinfo2().hblks - before)
""")


def _mmapped(tuned: bool) -> int:
    env = {"SPU_LITE_MALLOPT": "1" if tuned else "0", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", _MMAPPED], capture_output=True, text=True,
                         check=True, env=env, cwd=str(ROOT))
    return int(out.stdout.strip())


@linux_only
def test_tuned_once_on_linux():
    assert alloc.tune_allocator() is True
    assert alloc.tune_allocator() is True          # idempotent


@linux_only
def test_party_threads_keep_megabyte_arrays_in_the_heap():
    """Tuned, none of the 30 arrays of 1 MiB is a fresh mmap; with glibc's defaults
    (threshold 128 KiB, no frees yet to raise it) every one is. Counted by glibc, so
    the result does not depend on the machine's load (page-fault counts did)."""
    assert _mmapped(True) == 0
    assert _mmapped(False) == 30
