"""Idempotency-Key: what identifies a request, and which keys are accepted."""

from __future__ import annotations

import pytest

from libs.api.idempotency import MAX_KEY_LENGTH, check_key, fingerprint
from libs.api.problems import Problem


def test_fingerprint_covers_method_path_query_and_body() -> None:
    base = fingerprint("POST", "/v1/x", "a=1", b'{"v":1}')
    assert base == fingerprint("post", "/v1/x", "a=1", b'{"v":1}')
    assert (
        len(
            {
                base,
                fingerprint("PATCH", "/v1/x", "a=1", b'{"v":1}'),
                fingerprint("POST", "/v1/y", "a=1", b'{"v":1}'),
                fingerprint("POST", "/v1/x", "a=2", b'{"v":1}'),
                fingerprint("POST", "/v1/x", "a=1", b'{"v":2}'),
            }
        )
        == 5
    )
    # Parts are delimited: moving bytes between path and query changes the fingerprint.
    assert fingerprint("POST", "/v1/xa", "", b"") != fingerprint("POST", "/v1/x", "a", b"")


@pytest.mark.parametrize("key", ["", " ", "with space", "é", "x" * (MAX_KEY_LENGTH + 1)])
def test_bad_keys_are_422_naming_the_header(key: str) -> None:
    with pytest.raises(Problem) as exc:
        check_key(key)
    assert exc.value.status == 422 and exc.value.extra["errors"][0]["field"] == "header.Idempotency-Key"


def test_uuids_and_printable_keys_are_fine() -> None:
    for key in ("8e0d7c2a-4c6f-4b8e-9a51-0b8d6a1f2c3d", "order:42/retry", "x" * MAX_KEY_LENGTH):
        assert check_key(key) == key
