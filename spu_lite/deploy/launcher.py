"""`spu-lite cluster up cluster.yaml`: every party of a cluster file as a subprocess
of this one, on this machine (for trying a cluster out, demos and tests).

Children get SIGTERM when the launcher stops (Ctrl-C, SIGTERM, or the end of a `with`
block) and SIGKILL if they have not exited 5 s later. On Linux they also get SIGTERM
if the launcher itself is killed (PR_SET_PDEATHSIG), so no node outlives it.
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional

from .cluster_file import load


def _die_with_parent():                      # runs in the child before exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_ports(n: int) -> List[int]:
    """n TCP ports free on 127.0.0.1 right now (for local clusters and tests)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def node_command(cluster: str, name: str) -> List[str]:
    return [sys.executable, "-m", "spu_lite.deploy.cli", "node", "--cluster", cluster,
            "--party", name]


class Launcher:
    """Start, kill, restart and stop the nodes of a cluster file."""

    def __init__(self, cluster: str, names: Optional[List[str]] = None,
                 env: Optional[Dict[str, str]] = None, log_dir: Optional[str] = None):
        self.cluster = os.path.abspath(cluster)
        self.names = names or [p.name for p in load(self.cluster).parties]
        self.env = dict(os.environ, **(env or {}))
        self.log_dir = log_dir
        self.procs: Dict[str, subprocess.Popen] = {}

    def start(self, name: Optional[str] = None) -> "Launcher":
        for n in ([name] if name else self.names):
            out = None
            if self.log_dir:
                os.makedirs(self.log_dir, exist_ok=True)
                out = open(os.path.join(self.log_dir, f"{n}.log"), "ab")
            self.procs[n] = subprocess.Popen(
                node_command(self.cluster, n), env=self.env, stdout=out,
                stderr=subprocess.STDOUT if out else None,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        return self

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        p = self.procs[name]
        if p.poll() is None:
            p.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            p.wait(10)

    def restart(self, name: str) -> None:
        self.kill(name)
        self.start(name)

    def exited(self) -> Dict[str, int]:
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def stop(self, grace: float = 5.0) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)      # a stopped child cannot exit
                    p.terminate()
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for p in self.procs.values():
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def cluster_up(cluster: str, names: Optional[List[str]] = None) -> int:
    """Run the nodes until Ctrl-C / SIGTERM or until one of them exits."""
    launcher = Launcher(cluster, names)
    stopping = []
    handler = lambda *_: stopping.append(1)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    launcher.start()
    print(f"started {', '.join(launcher.names)} (Ctrl-C stops them all)", file=sys.stderr)
    code = 0
    try:
        while not stopping:
            dead = launcher.exited()
            if dead:
                print("node exited: " + ", ".join(f"{n} (code {c})" for n, c in dead.items())
                      + "; stopping the others", file=sys.stderr)
                code = 1
                break
            time.sleep(0.2)
    finally:
        launcher.stop()
    return code
