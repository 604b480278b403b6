"""Where the processes of one ``binome up --workers N`` share their state:
``<data_dir>/run/<pid of binome up>/`` (libs/runtime/workers.py).

- ``metrics/``: prometheus-client's multiprocess files (each process writes
  its samples there; /metrics merges them);
- ``rate-limit-*``: the rate limits' shared counters (libs/api/limits.py);
- ``dev-clock``: the dev clock's shared offset (libs/runtime/clock.py).

Kept apart per ``binome up`` (two platforms may share a data dir) and emptied
at start; the directories of platforms that no longer run (a ``kill -9``
leaves its own) are removed then too. Nothing here outlives the platform:
the dev clock's offset is saved for the next run in ``<data_dir>/dev-clock``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: prometheus-client reads it when it is imported, in every process.
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def run_dir_for(data_dir: Path) -> Path:
    return Path(data_dir) / "run" / str(os.getpid())


def prepare_run_dir(data_dir: Path) -> Path:
    """This platform's empty run directory; points prometheus-client at it.

    Call before anything imports prometheus-client (libs/cli.py ``up``): the
    worker processes inherit the environment variable.
    """
    root = Path(data_dir) / "run"
    if root.is_dir():
        for entry in root.iterdir():
            if not (entry.name.isdigit() and _running(int(entry.name))) or entry.name == str(os.getpid()):
                shutil.rmtree(entry, ignore_errors=True)
    run_dir = run_dir_for(data_dir)
    (run_dir / "metrics").mkdir(parents=True)
    os.environ[METRICS_ENV] = str(run_dir / "metrics")
    return run_dir


def remove_run_dir(run_dir: Path) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    return True
