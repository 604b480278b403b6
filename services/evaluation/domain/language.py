"""The language a participant's survey is shown in.

A survey version is written in every language of its programme; the first
of them is the programme's default. A participant's profile lists the
languages it speaks, in the order it gave them (its preference first): the
survey is shown in the first of those the survey has, else in the
programme's default.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum


class LanguageSource(StrEnum):
    PROFILE = "profile"
    PROGRAMME_DEFAULT = "programme_default"


def survey_language(profile_languages: Sequence[str] | None, survey_languages: Sequence[str]) -> tuple[str, LanguageSource]:
    """The language to show and where it comes from."""
    for language in profile_languages or ():
        if language in survey_languages:
            return language, LanguageSource.PROFILE
    return survey_languages[0], LanguageSource.PROGRAMME_DEFAULT
