"""PATCH bodies: every field optional, constraints and null-ness kept."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from libs.api.patch import partial_model, sent


class Inner(BaseModel):
    a: int
    b: int = 0


class Full(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=2)
    level: int = Field(ge=1, le=3)
    manager: str | None = None
    inner: Inner
    items: list[Inner] = []

    @field_validator("level")
    @classmethod
    def _not_two(cls, value: int) -> int:
        if value == 2:
            raise ValueError("two is reserved")
        return value


Patch = partial_model(Full, "Patch")


def test_every_field_is_optional_and_sent_says_what_came() -> None:
    assert sent(Patch()) == {}
    assert sent(Patch(manager=None)) == {"manager": None}
    body = Patch(inner={"a": 1}, items=[{"a": 2}])
    assert sent(body) == {"inner": {"a": 1, "b": 0}, "items": [{"a": 2, "b": 0}]}  # nested values whole
    assert sent(Patch(name="ab", level=1), only={"level"}) == {"level": 1}
    assert issubclass(Patch, Full)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),  # not nullable in the full model
        ({"name": "a"}, "name"),
        ({"level": 5}, "level"),
        ({"level": 2}, "level"),  # validators kept
        ({"unknown": 1}, "unknown"),  # extra still forbidden
    ],
)
def test_constraints_nullness_validators_and_extra_are_kept(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Patch(**body)
    assert [e["loc"] for e in exc.value.errors()] == [(field,)]
