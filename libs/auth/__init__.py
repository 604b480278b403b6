"""Authentication (JWT bearer tokens) and authorisation (roles, countries)."""

from libs.auth.principal import (
    ALL_ROLES,
    DEV_CLOCK,
    HR_ADMIN,
    OPS,
    PARTICIPANT,
    PROVISIONING,
    REGIONAL_COMMITTEE,
    SERVICE,
    Forbidden,
    Principal,
    require_role,
)
from libs.auth.tokens import InvalidToken, KeySourceUnavailable, TokenVerifier

__all__ = [
    "ALL_ROLES",
    "DEV_CLOCK",
    "HR_ADMIN",
    "OPS",
    "PARTICIPANT",
    "PROVISIONING",
    "REGIONAL_COMMITTEE",
    "SERVICE",
    "Forbidden",
    "InvalidToken",
    "KeySourceUnavailable",
    "Principal",
    "TokenVerifier",
    "require_role",
]
