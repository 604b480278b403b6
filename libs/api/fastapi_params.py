"""FastAPI's per-request question "is this parameter a list?", answered once
per annotation.

For every query, header and cookie parameter of every request, FastAPI's
``_get_multidict_value`` asks ``field_annotation_is_sequence`` of the
parameter's annotation, twice, and each answer walks the annotation
(``typing.get_origin``, ``issubclass`` against nine sequence types): the
page of participants, nine query parameters, spent about 40 % of its
parameter handling there (bench/request_cpu.py). The answer is a pure function of the
annotation, which never changes once the route is built, so it is kept
(``functools.lru_cache``, keyed by the annotation; an unhashable annotation
is asked afresh). The answers are FastAPI's own
(tests/unit/test_fastapi_params.py); ``fastapi`` is pinned.
"""

from __future__ import annotations

import functools
from typing import Any

import fastapi.dependencies.utils as fastapi_dependencies

_ask = fastapi_dependencies.field_annotation_is_sequence
_kept = functools.lru_cache(maxsize=1024)(_ask)


def field_annotation_is_sequence(annotation: Any) -> bool:
    """FastAPI's answer for ``annotation``, kept."""
    try:
        return _kept(annotation)
    except TypeError:  # unhashable (an Annotated with unhashable metadata)
        return _ask(annotation)


def keep_sequence_answers() -> None:
    """FastAPI's request handling asks the kept answers (idempotent)."""
    fastapi_dependencies.field_annotation_is_sequence = field_annotation_is_sequence
