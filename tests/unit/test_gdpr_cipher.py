"""Sealing one personal value: round trip, tamper detection, key ids, and the
declared keys of every event that carries personal data."""

from __future__ import annotations

import typing
import uuid

import pytest
from pydantic import BaseModel

from libs.events.registry import registry
from libs.gdpr.cipher import SealError, is_sealed, key_id_of, new_data_key, open_sealed, seal
from libs.gdpr.masters import MasterKeys, UnknownRegion


def test_a_sealed_value_opens_with_its_key_only() -> None:
    key_id, key = uuid.uuid4(), new_data_key()
    token = seal("Ada Lovelace <ada@example.org>", key_id, key)
    assert is_sealed(token)
    assert "Ada" not in token
    assert key_id_of(token) == key_id
    assert open_sealed(token, key) == "Ada Lovelace <ada@example.org>"
    with pytest.raises(SealError):
        open_sealed(token, new_data_key())


def test_sealing_twice_gives_different_tokens() -> None:
    key_id, key = uuid.uuid4(), new_data_key()
    assert seal("same", key_id, key) != seal("same", key_id, key)


def test_a_tampered_token_is_refused() -> None:
    key_id, key = uuid.uuid4(), new_data_key()
    token = seal("value", key_id, key)
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    with pytest.raises(SealError):
        open_sealed(flipped, key)
    with pytest.raises(SealError):
        open_sealed("enc:v1:abc", key)


def test_master_keys_wrap_per_region(tmp_path) -> None:
    masters = MasterKeys(keys={}, country_regions={"FR": "emea", "US": "amer"}, dev_dir=tmp_path)
    data_key = new_data_key()
    wrapped = masters.wrap(masters.region_of("fr"), data_key)
    assert masters.unwrap("emea", wrapped) == data_key
    with pytest.raises(Exception):
        masters.unwrap("amer", wrapped)
    assert masters.region_of("JP") == "global"
    # A second process finds the same dev key on disk.
    again = MasterKeys(keys={}, dev_dir=tmp_path)
    assert again.unwrap("emea", wrapped) == data_key


def test_configured_master_keys_never_invent_a_region() -> None:
    masters = MasterKeys(keys={"emea": bytes(32)}, dev_dir=None)
    with pytest.raises(UnknownRegion):
        masters.wrap("amer", new_data_key())


def _has_path(model: type[BaseModel], path: str) -> bool:
    for part in path.split("."):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            args = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
            model = args[0] if args else model
    return True


@pytest.mark.parametrize("type_", sorted(t for t, m in registry.models.items() if m.personal_fields))
def test_every_event_with_personal_data_names_its_key_and_owners(type_: str) -> None:
    model = registry.models[type_]
    assert model.personal_fields <= model.model_fields.keys(), "personal_fields must be top-level fields"
    assert _has_path(model, model.personal_key), f"{type_}: no field {model.personal_key}"
    for owner in model.personal_owners:
        assert _has_path(model, owner), f"{type_}: no field {owner}"
