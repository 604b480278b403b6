"""The kept answers to "is this parameter a list?" (libs/api/fastapi_params.py)
are FastAPI's own, for every parameter of every service's routes."""

from __future__ import annotations

from typing import Annotated

import fastapi.dependencies.utils as fastapi_dependencies
from fastapi import Query
from fastapi._compat.shared import field_annotation_is_sequence as fastapi_answer

from libs.api.fastapi_params import field_annotation_is_sequence, keep_sequence_answers
from libs.api.routes import api_routes
from tests.support.openapi_matrix import _apps


def every_parameter_annotation() -> list[object]:
    found = []
    for app in _apps().values():
        for _, route in api_routes(app.routes):
            pending = [route.dependant]
            while pending:
                dependant = pending.pop()
                pending += dependant.dependencies
                for field in (*dependant.query_params, *dependant.header_params, *dependant.cookie_params,
                              *dependant.path_params):  # fmt: skip
                    found.append(field.field_info.annotation)
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
