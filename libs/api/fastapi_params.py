"""FastAPI's per-request questions about a parameter, answered once per
parameter.

For every query, header and cookie parameter of every request, FastAPI asks
three questions whose answers never change once the route is built:

* "is it a list?" (``field_annotation_is_sequence``, twice per parameter in
  ``_get_multidict_value``: each answer walks the annotation with
  ``typing.get_origin`` and ``issubclass`` against nine sequence types); kept
  per annotation (``functools.lru_cache``; an unhashable annotation is asked
  afresh);
* "is it a model of parameters?" (``_get_param_model``, which unwraps an
  ``Optional`` and asks ``issubclass`` again) and "under which names may it
  come?" (``_get_param_aliases``); kept per parameter (FastAPI's
  ``ModelField``, built once per route; kept by identity, since it does not
  hash).

The page of participants, nine query parameters, spent about 40 % of its
parameter handling on the first question and about 30 % of what was left on
the other two (bench/request_cpu.py --profile participants). The answers are
FastAPI's own (tests/unit/test_fastapi_params.py); ``fastapi`` is pinned.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import fastapi.dependencies.utils as fastapi_dependencies

_ask = fastapi_dependencies.field_annotation_is_sequence
_kept = functools.lru_cache(maxsize=1024)(_ask)

#: Parameters whose answers are kept (every route's, a few hundred here); past it, asked afresh.
MAX_KEPT_FIELDS = 4096


def field_annotation_is_sequence(annotation: Any) -> bool:
    """FastAPI's answer for ``annotation``, kept."""
    try:
        return _kept(annotation)
    except TypeError:  # unhashable (an Annotated with unhashable metadata)
        return _ask(annotation)


def kept_per_field(ask: Callable[..., Any]) -> Callable[..., Any]:
    """``ask(field, **options)``, answered once per field (by identity) and options."""
    kept: dict[tuple[Any, ...], tuple[Any, Any]] = {}

    @functools.wraps(ask)
    def answer(field: Any, **options: Any) -> Any:
        key = (id(field), *options.items())
        hit = kept.get(key)
        if hit is not None and hit[0] is field:  # the same field, not another at a reused id
            return hit[1]
        found = ask(field, **options)
        if len(kept) < MAX_KEPT_FIELDS:
            kept[key] = (field, found)
        return found

    return answer  # FastAPI's own is ``answer.__wrapped__`` (functools.wraps)


get_param_model = kept_per_field(fastapi_dependencies._get_param_model)
get_param_aliases = kept_per_field(fastapi_dependencies._get_param_aliases)


def keep_sequence_answers() -> None:
    """FastAPI's request handling asks the kept answers (idempotent)."""
    fastapi_dependencies.field_annotation_is_sequence = field_annotation_is_sequence
    fastapi_dependencies._get_param_model = get_param_model
    fastapi_dependencies._get_param_aliases = get_param_aliases
