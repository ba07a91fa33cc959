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


LAUNCHER_PID_ENV = "SPU_LITE_LAUNCHER_PID"
PR_SET_PDEATHSIG = 1


def die_with_launcher() -> None:
    """Called by a node at start-up. If a Launcher started it (LAUNCHER_PID_ENV set), ask
    Linux for SIGTERM when the launcher exits (PR_SET_PDEATHSIG), and leave at once if
    it already has (the race between fork and this call). This runs in the node after
    exec, never as a Popen preexec_fn: Python code between fork and exec in a threaded
    parent (JAX's threads, the party threads) can block forever on a lock another
    thread held at the fork, and Popen would then wait for that child forever."""
    pid = os.environ.pop(LAUNCHER_PID_ENV, None)
    if not pid or not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != int(pid):
        raise SystemExit("spu-lite node: the launcher that started this node has exited")


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


def node_command(cluster: str, name: str, insecure_test_seed: bool = False) -> List[str]:
    return [sys.executable, "-m", "spu_lite.deploy.cli", "node", "--cluster", cluster,
            "--party", name] + (["--insecure-test-seed"] if insecure_test_seed else [])


class Launcher:
    """Start, kill, restart and stop the nodes of a cluster file."""

    def __init__(self, cluster: str, names: Optional[List[str]] = None,
                 env: Optional[Dict[str, str]] = None, log_dir: Optional[str] = None,
                 insecure_test_seed: bool = False):
        self.cluster = os.path.abspath(cluster)
        self.insecure_test_seed = insecure_test_seed
        self.names = names or [p.name for p in load(self.cluster).parties]
        self.env = dict(os.environ, **(env or {}), **{LAUNCHER_PID_ENV: str(os.getpid())})
        self.log_dir = log_dir
        self.procs: Dict[str, subprocess.Popen] = {}

    def start(self, name: Optional[str] = None) -> "Launcher":
        for n in ([name] if name else self.names):
            out = None
            if self.log_dir:
                os.makedirs(self.log_dir, exist_ok=True)
                out = open(os.path.join(self.log_dir, f"{n}.log"), "ab")
            self.procs[n] = subprocess.Popen(
                node_command(self.cluster, n, self.insecure_test_seed), env=self.env, stdout=out,
                stderr=subprocess.STDOUT if out else None)   # no preexec_fn: see die_with_launcher
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


def cluster_up(cluster: str, names: Optional[List[str]] = None,
               insecure_test_seed: bool = False) -> int:
    """Run the nodes until Ctrl-C / SIGTERM or until one of them exits."""
    launcher = Launcher(cluster, names, insecure_test_seed=insecure_test_seed)
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
