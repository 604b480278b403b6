"""Text the API reads with its surrounding white space stripped, and what
the OpenAPI documents say of it.

A stripped text must hold more than white space. ``minLength`` cannot say so
(it counts before the strip), and JSON Schema's ``\\s`` is ECMAScript's, which
leaves out characters Python strips (U+001C-U+001F, U+0085): the documents
ask for one character that is none of them (``NOT_BLANK``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

NOT_BLANK = r"[^\s\u001c-\u001f\u0085]"
#: ECMAScript's, Python's and Rust's ``\s`` differ on U+0085: patterns of
#: the documents that exclude white space name it too.
NO_SPACE = r"\s\u0085"


def stripped(max_length: int) -> Any:
    """A text of at most ``max_length`` characters once stripped, not blank."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length),
        Field(json_schema_extra={"pattern": NOT_BLANK}),
    ]
