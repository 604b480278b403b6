"""Directory routes: none is country-owned (libs/runtime/scope.py says what
this list is for). The directory belongs to the organisation as a whole: its
HR system provisions every country's people through one client."""

from __future__ import annotations

from libs.runtime.scope import PLATFORM_ROUTES, NotCountryOwned

_SCIM = "SCIM: the organisation's directory, for its provisioning client only (every other role gets 403)"

NOT_COUNTRY_OWNED: NotCountryOwned = {
    **PLATFORM_ROUTES,
    ("GET", "/v2/ServiceProviderConfig"): _SCIM,
    ("GET", "/v2/ResourceTypes"): _SCIM,
    ("GET", "/v2/ResourceTypes/{resource_type_id}"): _SCIM,
    ("GET", "/v2/Schemas"): _SCIM,
    ("GET", "/v2/Schemas/{schema_id}"): _SCIM,
    ("POST", "/v2/Users"): _SCIM,
    ("GET", "/v2/Users"): _SCIM,
    ("POST", "/v2/Users/.search"): _SCIM,
    ("POST", "/v2/.search"): _SCIM,
    ("GET", "/v2/Users/{user_id}"): _SCIM,
    ("PUT", "/v2/Users/{user_id}"): _SCIM,
    ("PATCH", "/v2/Users/{user_id}"): _SCIM,
    ("DELETE", "/v2/Users/{user_id}"): _SCIM,
    ("POST", "/v1/people/{person_id}:erase"): "GDPR erasure of a provisioned person: global HR admins only",
}
