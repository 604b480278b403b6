"""The kept answers to FastAPI's questions about a parameter ("is it a
list?", "is it a model of parameters?", "under which names?";
libs/api/fastapi_params.py) are FastAPI's own, for every parameter of every
service's routes."""

from __future__ import annotations

from typing import Annotated

import fastapi.dependencies.utils as fastapi_dependencies
from fastapi import Query
from fastapi._compat.shared import field_annotation_is_sequence as fastapi_answer

from libs.api.fastapi_params import (
    field_annotation_is_sequence,
    get_param_aliases,
    get_param_model,
    keep_sequence_answers,
    kept_per_field,
)
from libs.api.routes import api_routes
from tests.support.openapi_matrix import _apps


def every_parameter_annotation() -> list[object]:
    return [field.field_info.annotation for field in every_parameter()]


def every_parameter() -> list[object]:
    found = []
    for app in _apps().values():
        for _, route in api_routes(app.routes):
            pending = [route.dependant]
            while pending:
                dependant = pending.pop()
                pending += dependant.dependencies
                for field in (*dependant.query_params, *dependant.header_params, *dependant.cookie_params,
                              *dependant.path_params):  # fmt: skip
                    found.append(field)
    return found


def test_the_kept_answers_are_fastapis() -> None:
    annotations = every_parameter_annotation()
    assert len(annotations) > 100
    assert any(fastapi_answer(a) for a in annotations) and not all(fastapi_answer(a) for a in annotations)
    for annotation in annotations:
        assert field_annotation_is_sequence(annotation) is fastapi_answer(annotation), annotation
        assert field_annotation_is_sequence(annotation) is fastapi_answer(annotation), annotation  # kept


def test_an_unhashable_annotation_is_asked_afresh() -> None:
    unhashable = Annotated[list[str], Query(), {"a": "dict"}]
    assert field_annotation_is_sequence(unhashable) is True
    assert field_annotation_is_sequence(Annotated[str, Query(), {"a": "dict"}]) is False


def test_fastapis_request_handling_asks_the_kept_answers() -> None:
    _apps()  # builds the apps through create_service_app
    keep_sequence_answers()
    assert fastapi_dependencies.field_annotation_is_sequence is field_annotation_is_sequence
    assert fastapi_dependencies._get_param_model is get_param_model
    assert fastapi_dependencies._get_param_aliases is get_param_aliases


def test_the_answers_kept_per_parameter_are_fastapis() -> None:
    fields = every_parameter()
    assert len(fields) > 100
    for field in fields:
        for _ in range(2):  # asked, then kept
            assert get_param_model(field) is get_param_model.__wrapped__(field)
            assert get_param_aliases(field) == get_param_aliases.__wrapped__(field)
            for convert in (False, True):
                assert get_param_aliases(field, convert_underscores=convert) == get_param_aliases.__wrapped__(
                    field, convert_underscores=convert
                )


def test_a_field_at_a_reused_id_is_asked_afresh() -> None:
    calls: list[object] = []

    class Field:
        pass

    answer = kept_per_field(lambda field: calls.append(field) or len(calls))
    first = Field()
    assert answer(first) == answer(first) == 1
    del first
    second = Field()  # CPython may give it the same id
    assert answer(second) == 2 and calls[-1] is second
