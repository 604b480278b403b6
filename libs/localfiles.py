"""Files the embedded stack keeps under its data directory (dev keys)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def write_new_file(path: Path, data: bytes, mode: int) -> bool:
    """Create ``path`` with ``data`` unless it exists; True if we created it.

    Writes a temporary file then hard-links it into place: the link is atomic
    and fails if the target exists, so two processes starting at once (two
    services of the embedded stack) never both "win" or see a half-written key.
    """
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
