"""Child processes that die with their parent, even on ``kill -9``.

``binome up`` runs the embedded broker and PostgreSQL as its own children. A
``kill -9`` of ``binome up`` runs no clean-up code, so the children are told
by the kernel instead: Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``)
is set in the child between ``fork`` and ``exec``.

Two subtleties decide where a child may be spawned from:

- the signal fires when the *thread* that forked the child exits, not the
  process: spawn from the event-loop thread (never ``asyncio.to_thread``, whose
  worker threads come and go);
- the kernel clears the setting when the child's user id changes, so it is
  set in ``preexec_fn``, which runs after ``subprocess`` switched to ``user=``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

_PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None  # elsewhere the child is stopped by the clean shutdown only
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return libc.prctl


def _die_with(parent: int, sig: signal.Signals) -> Callable[[], None]:
    prctl = _prctl()  # looked up before fork: the child only calls it

    def preexec() -> None:
        if prctl is not None and prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            os._exit(70)  # cannot promise to die with the parent: do not start
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(71)

    return preexec


def spawn(argv: Sequence[str], *, death_signal: signal.Signals, user: str | None = None, **popen: Any) -> subprocess.Popen:
    """``subprocess.Popen(argv)`` that receives ``death_signal`` when this thread exits.

    ``user``: run as this system user (with its primary group and no other),
    as ``binome up`` does for PostgreSQL when it runs as root.
    """
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        popen.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
    return subprocess.Popen(
        list(argv), preexec_fn=_die_with(os.getpid(), death_signal), stdin=subprocess.DEVNULL, **popen
    )


def stop(process: subprocess.Popen | None, sig: signal.Signals = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Send ``sig``, wait up to ``timeout`` seconds, then kill; reap it either way."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
