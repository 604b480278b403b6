"""The SCIM resources and the service description the directory publishes
(``/ServiceProviderConfig``, ``/ResourceTypes``, ``/Schemas``), built with
``scim2-models``.

The core ``User`` here is the RFC 7643 User schema reduced to what Binome
keeps (data minimisation): a provisioning client learns it from ``/Schemas``
and an attribute outside it is refused (``invalidValue``), never stored
silently. The enterprise extension is the standard one; the Binome extension
carries what matching needs and SCIM lacks.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import EmailStr, Field

from scim2_models import (
    URN,
    AuthenticationScheme,
    Bulk,
    CaseExact,
    ComplexAttribute,
    Mutability,
    Reference,
    ChangePassword,
    EnterpriseUser,
    ETag,
    Extension,
    Filter,
    Meta,
    Patch,
    Required,
    Resource,
    ResourceType,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)
from scim2_models import Email as ScimEmail
from scim2_models import Pagination as PaginationSupport
from scim2_models.resources.resource import AnyExtension

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
BINOME_USER = "urn:binome:params:scim:schemas:extension:binome:2.0:User"
#: The most resources one list answers with (``count`` above it is lowered).
MAX_RESULTS = 200


#: Suggested values (``canonicalValues`` in ``/Schemas``); any ISO code is accepted.
COUNTRIES = ["FR", "DE", "GB", "ES", "IT", "NL", "BE", "CH", "US", "CA", "BR", "IN", "CN", "JP", "SG", "AU"]
LANGUAGES = ["en", "fr", "de", "es", "it", "pt", "zh", "ja", "fr,en", "de,en", "es,en", "en,fr,de"]


class Name(ComplexAttribute):
    """RFC 7643 §4.1.1 ``name``, reduced to what Binome keeps."""

    formatted: str | None = None
    """The full name, formatted for display (e.g. "Ms. Barbara J Jensen, III")."""

    family_name: str | None = None
    """The family name of the User (e.g. "Jensen")."""

    given_name: str | None = None
    """The given name of the User (e.g. "Barbara")."""


class Email(ComplexAttribute):
    """RFC 7643 §4.1.2 ``emails``, reduced to what Binome keeps."""

    value: EmailStr | None = None
    """An e-mail address of the User."""

    type: ScimEmail.Type | None = None
    """A label indicating the address's function: "work", "home" or "other"."""

    primary: bool | None = None
    """Whether this is the User's primary e-mail address."""


class Manager(ComplexAttribute):
    """RFC 7643 §4.3 ``manager``: both sub-attributes are RECOMMENDED there
    (scim2-models makes ``$ref`` required; connectors send ``value`` alone)."""

    value: Annotated[str | None, CaseExact.true] = None
    """The id of the SCIM resource representing the User's manager."""

    ref: Reference["User"] | None = Field(None, serialization_alias="$ref", validation_alias="$ref")
    """The URI of the SCIM resource representing the User's manager."""

    display_name: Annotated[str | None, Mutability.read_only] = None
    """The displayName of the User's manager."""


class Enterprise(EnterpriseUser):
    """The standard enterprise extension, with RFC 7643's optional ``manager.$ref``."""

    manager: Manager | None = None
    """The User's manager, by the id of their SCIM resource."""


class BinomeUser(Extension):
    """What matching needs about a person that core SCIM does not carry."""

    __schema__ = URN(BINOME_USER)

    country: str | None = Field(None, examples=COUNTRIES)
    """ISO 3166-1 alpha-2 country the person works in (e.g. "FR")."""

    entity: str | None = None
    """The subsidiary or legal entity the person belongs to."""

    job_level: int | None = None
    """Job level, 1 = entry level; higher is more senior."""

    business_function: str | None = None
    """The person's business function (their "professional language")."""

    languages: str | None = Field(None, examples=LANGUAGES)
    """The languages the person speaks: ISO 639-1 codes, comma-separated
    (e.g. "fr,en"). One string rather than a multi-valued attribute: HR
    connectors' custom attributes are single strings (Entra ID's are)."""


class User(Resource[AnyExtension]):
    """RFC 7643 §4.1 User, reduced to the attributes Binome keeps."""

    __schema__ = URN(CORE_USER)

    user_name: Annotated[str | None, Uniqueness.server, Required.true] = None
    """Unique identifier for the User in the organisation."""

    name: Name | None = None
    """The components of the user's real name."""

    display_name: str | None = None
    """The name of the User, suitable for display to end-users."""

    title: str | None = None
    """The user's title, such as "Vice President"."""

    preferred_language: str | None = None
    """The User's preferred written or spoken language (RFC 7231 tag)."""

    locale: str | None = None
    """The User's default location for localisation (e.g. "fr-FR")."""

    timezone: str | None = None
    """The User's time zone, an IANA name (e.g. "Europe/Paris")."""

    active: bool | None = None
    """The User's administrative status: false when they left."""

    emails: list[Email] | None = None
    """E-mail addresses of the User."""


#: The resource ``/Users`` serves: the core User with both extensions.
ScimUser = User[Union[Enterprise, BinomeUser]]  # noqa: UP007 - scim2-models reads the Union

USER_TYPE = ResourceType.from_resource(ScimUser)

CONFIG = ServiceProviderConfig(
    patch=Patch(supported=True),
    bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
    filter=Filter(supported=True, max_results=MAX_RESULTS),
    change_password=ChangePassword(supported=False),
    sort=Sort(supported=True),
    etag=ETag(supported=True),
    pagination=PaginationSupport(cursor=False, index=True, default_pagination_method="index",
                                 default_page_size=100, max_page_size=MAX_RESULTS),
    authentication_schemes=[
        AuthenticationScheme(
            type="oauthbearertoken",
            name="OAuth Bearer Token",
            description="A JWT with the organisation's 'provisioning' role (RFC 6750).",
            spec_uri="https://www.rfc-editor.org/rfc/rfc6750",
            primary=True,
        )
    ],
)

PROVIDER = ScimProvider(models=[User, Enterprise, BinomeUser], resource_types=[USER_TYPE], config=CONFIG)

__all__ = ["BINOME_USER", "CONFIG", "CORE_USER", "MAX_RESULTS", "PROVIDER", "USER_TYPE", "BinomeUser",
           "CaseExact", "Email", "Name", "Enterprise", "EnterpriseUser", "Manager", "Meta", "ScimUser", "User"]
