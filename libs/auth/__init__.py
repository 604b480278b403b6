"""Authentication (JWT bearer tokens) and authorisation (roles, countries).

The verifier is ``libs.auth.tokens`` (imported where it is used: the
``binome token`` command only signs, and starts faster without it)."""

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
    "Principal",
    "require_role",
]
