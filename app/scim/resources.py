"""Lanyard's people and roles as SCIM resources (scim2-models), and SCIM payloads back as staff records.

userName is the email address; name.formatted and displayName the name colleagues know; emails[primary];
active; externalId kept as sent; userType the staff type (employee, supply, volunteer, contractor); the
end date (the last day) in Lanyard's own extension. Groups are the five roles, with fixed ids.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from scim2_models import (
    URN,
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Email,
    ETag,
    Extension,
    Filter,
    Group,
    GroupMember,
    GroupMembership,
    Meta,
    Mutability,
    Name,
    Patch,
    ServiceProviderConfig,
    Sort,
    User,
)

from app.models import Role, StaffType
from app.models import User as Person
from app.services.errors import ValidationFailed
from app.services.provisioning import StaffRecord
from app.services.staff_terms import parse_end_date, parse_staff_type

LANYARD_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:lanyard:2.0:User"
MAX_RESULTS = 200


class LanyardUser(Extension):
    """Lanyard's extension: the person's last day at the school (after which the account ends)."""

    __schema__ = URN(LANYARD_USER_SCHEMA)

    end_date: Annotated[str | None, Mutability.read_write] = Field(None, examples=["2031-07-31"])
    """The person's last day at the school, YYYY-MM-DD (DD/MM/YYYY is read too); empty for no end date."""


ScimUser = User[LanyardUser]

GROUP_NAMES = {
    Role.STAFF: "Staff",
    Role.APPROVER: "Approvers",
    Role.OFFICE: "Office",
    Role.ADMIN: "Admins",
    Role.GOVERNOR: "Governors",
}


def role_for_group(group_id_or_name: str) -> Role | None:
    text = (group_id_or_name or "").strip().lower()
    for role, name in GROUP_NAMES.items():
        if text in (role.value, name.lower()):
            return role
    return None


def user_resource(person: Person, base: str) -> ScimUser:
    resource = ScimUser(
        id=str(person.id),
        external_id=person.external_id or None,
        user_name=person.email,
        name=Name(formatted=person.display_name),
        display_name=person.display_name,
        # Built without re-checking: the address was checked when it was stored, and email-validator
        # refuses reserved domains (like .test) that a school's own set-up may still use.
        emails=[Email.model_construct(value=person.email, primary=True, type=Email.Type.work)],
        active=person.is_active_account,
        user_type=person.staff_type,
        groups=[
            GroupMembership(value=role.value, display=GROUP_NAMES[role], ref=f"{base}/Groups/{role.value}")
            for role in sorted(person.roles)
        ],
        meta=Meta(
            resource_type="User",
            created=person.created_at,
            last_modified=person.created_at,
            location=f"{base}/Users/{person.id}",
        ),
    )
    resource[LanyardUser] = LanyardUser(end_date=person.end_date.isoformat() if person.end_date else None)
    return resource


def group_resource(role: Role, members: list[Person], base: str) -> Group:
    return Group(
        id=role.value,
        display_name=GROUP_NAMES[role],
        members=[GroupMember(value=str(p.id), display=p.display_name, ref=f"{base}/Users/{p.id}", type="User") for p in members],
        meta=Meta(resource_type="Group", location=f"{base}/Groups/{role.value}"),
    )


def staff_record(resource: ScimUser, *, replacing: bool) -> StaffRecord:
    """The staff record a SCIM User describes. ``replacing`` (PUT, PATCH) treats a missing end date as none."""
    emails = resource.emails or []
    primary = next((e.value for e in emails if e.primary), None) or next((e.value for e in emails if e.value), None)
    email = (resource.user_name or primary or "").strip()
    display_name = (resource.display_name or (resource.name.formatted if resource.name else None) or "").strip()
    if not display_name and resource.name:
        display_name = " ".join(part for part in (resource.name.given_name, resource.name.family_name) if part)
    if not display_name:
        # Entra ID and Google always send a name; a bare provisioning call gets the address's first part.
        display_name = email.partition("@")[0]
    errors: dict[str, list[str]] = {}
    if not email:
        errors["userName"] = ["userName (the school email address) is required."]
    staff_type = parse_staff_type(resource.user_type) if resource.user_type else (StaffType.EMPLOYEE if replacing else None)
    if staff_type is None and resource.user_type:
        errors["userType"] = [f"userType must be one of {', '.join(t.value for t in StaffType)}."]
    extension = resource[LanyardUser]
    end_text = extension.end_date if extension else None
    end_date = None
    try:
        end_date = parse_end_date(end_text)
    except ValueError as error:
        errors["endDate"] = [str(error)]
    if errors:
        raise ValidationFailed("The user is not complete.", errors)
    return StaffRecord(
        email=email,
        display_name=display_name[:120],
        staff_type=staff_type,
        end_date=end_date,
        end_date_given=replacing or extension is not None,
        active=resource.active,
        external_id=resource.external_id if resource.external_id is not None else ("" if replacing else None),
    )


def user_schema():
    """The core User schema as Lanyard serves it: userType names the staff types it knows."""
    schema = ScimUser.to_schema()
    for attribute in schema.attributes or []:
        if attribute.name == "userType":
            attribute.canonical_values = [staff_type.value for staff_type in StaffType]
            attribute.description = "The staff type: employee, supply, volunteer or contractor."
    return schema


def service_provider_config(base: str) -> ServiceProviderConfig:
    return ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[
            AuthenticationScheme(
                type="oauthbearertoken",
                name="Provisioning token",
                description="Authorization: Bearer with a provisioning token an admin makes in Lanyard (Staff > Provisioning).",
                primary=True,
            )
        ],
        meta=Meta(resource_type="ServiceProviderConfig", location=f"{base}/ServiceProviderConfig"),
    )
