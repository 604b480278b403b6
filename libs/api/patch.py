"""PATCH bodies from the model of the full resource.

    class ProfileIn(BaseModel):
        model_config = ConfigDict(extra="forbid")
        time_zone: TimeZone
        manager_ref: str | None = None

    ProfilePatch = partial_model(ProfileIn, "ProfilePatch")

Every field of the result is optional; what the client sent is
``model_fields_set`` (``sent(body)`` dumps exactly that). A field keeps its
constraints and validators, and accepts ``null`` only where the full model
does, so ``{"time_zone": null}`` is a 422 naming ``time_zone`` rather than a
way to erase a required value. Unknown fields stay forbidden if the model
forbids them.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

from pydantic import BaseModel, create_model

M = TypeVar("M", bound=BaseModel)


def partial_model(model: type[M], name: str, *, doc: str | None = None) -> type[M]:
    fields: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        optional = copy.deepcopy(info)
        optional.default = None  # not validated (validate_default is off): absent stays absent
        optional.default_factory = None
        fields[field_name] = (info.annotation, optional)
    partial = create_model(
        name, __base__=model, __doc__=doc or f"{model.__name__} with every field optional.", **fields
    )
    return partial


def sent(body: BaseModel, *, only: set[str] | None = None) -> dict[str, Any]:
    """The fields the client sent (nested values dumped whole), optionally among ``only``."""
    names = body.model_fields_set if only is None else body.model_fields_set & only
    return body.model_dump(include=names)
