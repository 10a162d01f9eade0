"""The audit log in plain English: one sentence function per kind of event, and its details as labelled fields.

Names are looked up once per page (``names_for``), never once per event. A person, device, asset or
area that has since been erased reads as such ("a device since erased"); the stored event is untouched.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import format_date, format_datetime, format_time, to_local
from app.models import (
    Area,
    AssetKind,
    AuditEvent,
    AuditLink,
    DeviceKind,
    PermissionRequest,
    PersonalDevice,
    PolicyVersion,
    RequestReason,
    SchoolAsset,
    User,
)

ERASED_PERSON = "a person since erased"
ERASED_DEVICE = "a device since erased"
ERASED_ASSET = "an item of equipment since erased"
ERASED_AREA = "an area since erased"
SYSTEM = "Lanyard"
# Details that name people or things by id: looked up in the page's batch like the subject.
PERSON_KEYS = ("borrower_id", "person_id", "approver_id", "user_id")
AREA_KEYS = ("area_id", "moved_to_area_id")


@dataclass
class Names:
    """Every name a page of events needs, read in one batch."""

    people: dict[int, str] = field(default_factory=dict)
    devices: dict[int, tuple[int, str]] = field(default_factory=dict)
    assets: dict[int, str] = field(default_factory=dict)
    areas: dict[int, str] = field(default_factory=dict)
    requests: dict[int, tuple[int, str, int]] = field(default_factory=dict)
    policies: dict[int, str] = field(default_factory=dict)
    links: dict[int, dict[str, list[str]]] = field(default_factory=dict)

    def person(self, user_id: object) -> str:
        key = _int(user_id)
        return self.people.get(key, ERASED_PERSON) if key is not None else ERASED_PERSON

    def device(self, device_id: object) -> str:
        """Mr B Clarke's iPhone 13."""
        found = self.devices.get(_int(device_id) or 0)
        if found is None:
            return ERASED_DEVICE
        return f"{possessive(self.person(found[0]))} {found[1]}"

    def asset(self, asset_id: object) -> str:
        return self.assets.get(_int(asset_id) or 0, ERASED_ASSET)

    def area(self, area_id: object) -> str:
        return self.areas.get(_int(area_id) or 0, ERASED_AREA)


def _int(value: object) -> int | None:
    if isinstance(value, int):
        return value
    text = str(value or "")
    return int(text) if text.isdigit() and len(text) < 12 else None


def possessive(name: str) -> str:
    """Mr B Clarke's, Mrs E Evans's (the school's house style adds 's to every name)."""
    return f"{name}'s"


@dataclass
class Told:
    """One event as its sentence function sees it: who did it, what it was about, and its details."""

    event: AuditEvent
    names: Names
    details: dict

    @property
    def actor(self) -> str:
        if self.event.actor_id is None:
            return SYSTEM
        return self.names.person(self.event.actor_id)

    @property
    def subject(self) -> str:
        return self.event.subject_id

    def device(self, device_id: object) -> str:
        """Mr B Clarke's iPhone 13, or their iPhone 13 when Mr B Clarke is the one acting."""
        found = self.names.devices.get(_int(device_id) or 0)
        if found is not None and found[0] == self.event.actor_id:
            return f"their {found[1]}"
        return self.names.device(device_id)

    def linked(self, kind: str) -> str:
        refs = self.names.links.get(self.event.seq, {}).get(kind, [])
        return refs[0] if refs else ""

    def other_person(self) -> str:
        """The person an event is about who is not its actor (the linked person), or the subject person."""
        refs = [r for r in self.names.links.get(self.event.seq, {}).get("user", []) if r != str(self.event.actor_id or "")]
        if refs:
            return self.names.person(refs[0])
        return self.names.person(self.subject) if self.event.subject_type == "user" else ERASED_PERSON

    def subject_person(self) -> str:
        if self.event.actor_id is not None and self.subject == str(self.event.actor_id):
            return "their own account"
        return f"{possessive(self.names.person(self.subject))} account"

    def request_device(self) -> str:
        """The device of a permission request, by name, and whose it is."""
        found = self.names.requests.get(_int(self.subject) or 0)
        if found is not None:
            requester, label, _area = found
            owner = "their" if requester == self.event.actor_id else possessive(self.names.person(requester))
            return f"{owner} {label}".strip()
        if device := self.linked("personal_device"):
            return self.device(device)
        if asset := self.linked("asset"):
            return self.names.asset(asset)
        return ERASED_DEVICE

    def request_area(self) -> str:
        found = self.names.requests.get(_int(self.subject) or 0)
        if found is not None:
            return self.names.area(found[2])
        area = self.details.get("area_id") or self.linked("area")
        return self.names.area(area)

    def until(self, key: str = "approved_until") -> str:
        return when(self.details.get(key), self.event.occurred_at)

    def count(self, key: str = "count", one: str = "person", many: str = "people") -> str:
        number = self.details.get(key) or 0
        return f"{number} {one if number == 1 else many}"


def when(value: object, beside: datetime | None = None) -> str:
    """A stored ISO time as 10:40 on the event's own day, else 12/12/2026 10:40; a date as 12/12/2026."""
    if not isinstance(value, str) or not value:
        return "an unknown time"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if len(value) == 10:
        return format_date(date.fromisoformat(value))
    if beside is not None and to_local(moment).date() == to_local(beside).date():
        return format_time(moment)
    return format_datetime(moment)


Sentence = Callable[[Told], str]
SENTENCES: dict[str, Sentence] = {}
LABELS: dict[str, str] = {}
GROUPS: dict[str, str] = {
    "permission.": "Permissions",
    "standing_permission.": "Standing permissions",
    "device.": "Personal devices",
    "asset.": "School equipment",
    "loan.": "Loans",
    "stocktake.": "Stock-takes",
    "area.": "Areas",
    "policy.": "The policy",
    "user.": "Staff accounts",
    "staff.": "Staff import",
    "scim.": "Staff provisioning",
    "auth.": "Signing in",
    "passkey.": "Passkeys",
    "api_token.": "API tokens",
    "scim_token.": "Provisioning tokens",
    "approver.": "Approvers",
    "push.": "Push notifications",
    "mail.": "Email",
    "notices.": "Notices",
    "personal_data.": "Personal data",
    "export.": "Exports",
    "setting.": "Settings",
    "audit.": "The audit log",
    "retention.": "Retention",
}


def says(action: str, label: str) -> Callable[[Sentence], Sentence]:
    """Register the sentence function for one action, with the short label the filter shows."""

    def register(function: Sentence) -> Sentence:
        SENTENCES[action] = function
        LABELS[action] = label
        return function

    return register


def unknown_sentence(told: Told) -> str:
    """The fallback for an action with no sentence of its own (an older or newer kind of event)."""
    return f"{told.actor} recorded “{told.event.action}”."


def sentence_for(event: AuditEvent, names: Names) -> str:
    told = Told(event, names, _details(event))
    return SENTENCES.get(event.action, unknown_sentence)(told)


def action_label(action: str) -> str:
    return LABELS.get(action, action)


def _details(event: AuditEvent) -> dict:
    try:
        details = json.loads(event.details or "{}")
    except ValueError:
        return {}
    return details if isinstance(details, dict) else {}


# Permissions --------------------------------------------------------------------------------------


@says("permission.requested", "Permission asked for")
def permission_requested(t: Told) -> str:
    return f"{t.actor} asked to use {t.request_device()} in {t.request_area()} until {t.until('wanted_until')}."


@says("permission.approved", "Permission approved")
def permission_approved(t: Told) -> str:
    return f"{t.actor} approved {t.request_device()} for {t.request_area()} until {t.until()}."


@says("permission.denied", "Permission denied")
def permission_denied(t: Told) -> str:
    return f"{t.actor} denied {t.request_device()} in {t.request_area()}."


@says("permission.auto_approved", "Approved by a standing permission")
def permission_auto_approved(t: Told) -> str:
    return f"{t.actor} used {t.request_device()} in {t.request_area()} under a standing permission, until {t.until()}."


@says("permission.emergency_override", "Emergency override")
def permission_emergency_override(t: Told) -> str:
    return f"{t.actor} used an emergency override for {t.request_device()} in {t.request_area()} until {t.until()}."


@says("permission.emergency_reviewed", "Emergency override reviewed")
def permission_emergency_reviewed(t: Told) -> str:
    outcome = str(t.details.get("outcome", "")).replace("_", " ")
    return f"{t.actor} reviewed the emergency override for {t.request_device()} in {t.request_area()}: {outcome}."


@says("permission.emergency_review_overdue", "Emergency review overdue")
def permission_emergency_review_overdue(t: Told) -> str:
    return (
        f"The emergency override for {t.request_device()} in {t.request_area()} was still not reviewed; approvers were reminded."
    )


@says("permission.withdrawn", "Request withdrawn")
def permission_withdrawn(t: Told) -> str:
    return f"{t.actor} withdrew the request for {t.request_device()} in {t.request_area()}."


@says("permission.ended", "Permission ended")
def permission_ended(t: Told) -> str:
    if t.details.get("moved_to_area_id"):
        moved = t.names.area(t.details["moved_to_area_id"])
        return f"{t.request_device()}'s permission in {t.request_area()} ended: it was approved for {moved}."
    return f"{t.actor} ended the permission for {t.request_device()} in {t.request_area()} early."


@says("permission.expired", "Request or permission expired")
def permission_expired(t: Told) -> str:
    was = "request" if t.details.get("was") == "pending" else "permission"
    return f"The {was} for {t.request_device()} in {t.request_area()} expired."


@says("permission.escalated", "Request passed to more approvers")
def permission_escalated(t: Told) -> str:
    return f"The request for {t.request_device()} in {t.request_area()} waited {t.details.get('waited_minutes', '?')} minutes and went to more approvers."


@says("permission.refused_by_rule", "Refused by the area's rule")
def permission_refused_by_rule(t: Told) -> str:
    thing = t.device(t.linked("personal_device")) if t.linked("personal_device") else "a device"
    if t.linked("asset"):
        thing = t.names.asset(t.linked("asset"))
    return f"{t.actor} asked to use {thing} in {t.names.area(t.subject)}, which its rule does not allow."


@says("standing_permission.granted", "Standing permission granted")
def standing_permission_granted(t: Told) -> str:
    areas = ", ".join(t.names.area(a) for a in t.details.get("area_ids", [])) or ERASED_AREA
    device = t.names.device(t.details.get("personal_device_id"))
    starts, ends = when(t.details.get("starts_on")), when(t.details.get("ends_on"))
    return f"{t.actor} gave {device} a standing permission for {areas} from {starts} to {ends}."


@says("standing_permission.ended", "Standing permission ended")
def standing_permission_ended(t: Told) -> str:
    return f"{t.actor} ended {possessive(t.names.person(t.details.get('person_id')))} standing permission."


@says("approver.away", "Approver away")
def approver_away(t: Told) -> str:
    return f"{t.actor} marked themselves away: requests go to other approvers."


@says("approver.back", "Approver back")
def approver_back(t: Told) -> str:
    return f"{t.actor} marked themselves back for approvals."


# Personal devices ---------------------------------------------------------------------------------


@says("device.registered", "Device registered")
def device_registered(t: Told) -> str:
    return f"{t.actor} registered {t.device(t.subject)}."


@says("device.updated", "Device changed")
def device_updated(t: Told) -> str:
    return f"{t.actor} changed the details of {t.device(t.subject)}."


@says("device.retired", "Device retired")
def device_retired(t: Told) -> str:
    return f"{t.actor} retired {t.device(t.subject)}."


@says("device.reported_lost", "Device reported lost")
def device_reported_lost(t: Told) -> str:
    return f"{t.actor} reported {t.device(t.subject)} lost."


@says("device.reported_stolen", "Device reported stolen")
def device_reported_stolen(t: Told) -> str:
    return f"{t.actor} reported {t.device(t.subject)} stolen."


@says("device.found", "Device found")
def device_found(t: Told) -> str:
    return f"{t.actor} marked {t.device(t.subject)} found."


@says("device.duplicate_imei_refused", "Device refused: IMEI already registered")
def device_duplicate_imei_refused(t: Told) -> str:
    return f"{t.actor} tried to register an IMEI that is already registered; it was refused."


@says("device.imei_revealed", "IMEI shown")
def device_imei_revealed(t: Told) -> str:
    return f"{t.actor} revealed the IMEI of {t.device(t.subject)}."


@says("device.register_searched", "Register searched")
def device_register_searched(t: Told) -> str:
    if t.details.get("by") == "imei":
        return f"{t.actor} searched the device register by IMEI."
    return f"{t.actor} searched the device register for “{t.details.get('text', '')}”."


@says("device.register_reminders_sent", "Reminders to register a device")
def device_register_reminders_sent(t: Told) -> str:
    if t.event.subject_id:
        return f"{t.actor} reminded {t.names.person(t.subject)} to register a device."
    return f"{t.actor} reminded {t.count()} to register a device."


@says("device.none_declared", "Declared no personal device")
def device_none_declared(t: Told) -> str:
    return f"{t.actor} declared that they do not bring a personal phone or recording device to school."


@says("device.none_declaration_withdrawn", "No-device declaration withdrawn")
def device_none_declaration_withdrawn(t: Told) -> str:
    return f"{t.actor} withdrew their declaration that they bring no personal device."


# School equipment, loans and stock-takes ----------------------------------------------------------


@says("asset.created", "Equipment added")
def asset_created(t: Told) -> str:
    return f"{t.actor} added {t.names.asset(t.subject)} to the equipment register."


@says("asset.updated", "Equipment changed")
def asset_updated(t: Told) -> str:
    return f"{t.actor} changed the details of {t.names.asset(t.subject)}."


@says("asset.retired", "Equipment retired")
def asset_retired(t: Told) -> str:
    return f"{t.actor} retired {t.names.asset(t.subject)}."


@says("asset.imported", "Equipment imported")
def asset_imported(t: Told) -> str:
    return f"{t.actor} imported {t.count(one='item', many='items')} of equipment."


@says("asset.import_refused", "Equipment import refused")
def asset_import_refused(t: Told) -> str:
    return f"{t.actor} tried to import equipment; the file was refused."


@says("asset.duplicate_imei_refused", "Equipment refused: IMEI already registered")
def asset_duplicate_imei_refused(t: Told) -> str:
    return f"{t.actor} tried to add equipment with an IMEI that is already registered; it was refused."


@says("loan.checked_out", "Lent")
def loan_checked_out(t: Told) -> str:
    return f"{t.actor} lent {t.names.asset(t.subject)} to {t.names.person(t.details.get('borrower_id'))}, due back {t.until('due_on')}."


@says("loan.checked_in", "Returned")
def loan_checked_in(t: Told) -> str:
    return f"{t.actor} checked in {t.names.asset(t.subject)} from {t.other_person()}."


@says("loan.reminder_sent", "Loan reminder")
def loan_reminder_sent(t: Told) -> str:
    return f"{SYSTEM} reminded {t.names.person(t.details.get('borrower_id'))} to return {t.names.asset(t.subject)}."


@says("loan.overdue_summary_sent", "Overdue loans summary")
def loan_overdue_summary_sent(t: Told) -> str:
    return f"{SYSTEM} sent the office the summary of {t.count('overdue', 'overdue loan', 'overdue loans')}."


@says("stocktake.started", "Stock-take started")
def stocktake_started(t: Told) -> str:
    where = t.details.get("location") or "every location"
    return f"{t.actor} started a stock-take of {where}."


@says("stocktake.scanned", "Label scanned")
def stocktake_scanned(t: Told) -> str:
    if t.details.get("asset_id"):
        return f"{t.actor} scanned {t.names.asset(t.details['asset_id'])} in a stock-take."
    return f"{t.actor} scanned an unknown label in a stock-take."


@says("stocktake.closed", "Stock-take closed")
def stocktake_closed(t: Told) -> str:
    return f"{t.actor} closed a stock-take."


@says("export.downloaded", "Export downloaded")
def export_downloaded(t: Told) -> str:
    what = {"assets": "the equipment register", "loans": "the loans", "stocktake": "a stock-take's results"}
    return f"{t.actor} downloaded {what.get(str(t.details.get('export')), 'an export')} as CSV."


# Areas and the policy -----------------------------------------------------------------------------


@says("area.created", "Area added")
def area_created(t: Told) -> str:
    return f"{t.actor} added the area {t.names.area(t.subject)}."


@says("area.updated", "Area changed")
def area_updated(t: Told) -> str:
    return f"{t.actor} changed the area {t.names.area(t.subject)}."


@says("area.poster_rotated", "Area poster renewed")
def area_poster_rotated(t: Told) -> str:
    return f"{t.actor} renewed the poster code for {t.names.area(t.subject)}."


@says("policy.published", "Policy published")
def policy_published(t: Told) -> str:
    return f"{t.actor} published the policy “{t.details.get('label', '')}”, to be reviewed by {t.until('review_date')}."


@says("policy.accepted", "Policy accepted")
def policy_accepted(t: Told) -> str:
    return f"{t.actor} accepted the policy “{t.details.get('label', '')}”."


@says("policy.reminders_sent", "Policy reminders")
def policy_reminders_sent(t: Told) -> str:
    return f"{t.actor} reminded {t.count()} to accept the policy."


@says("policy.review_reminder_sent", "Policy review reminder")
def policy_review_reminder_sent(t: Told) -> str:
    return f"{SYSTEM} reminded the administrators that the policy is due for review by {t.until('review_date')}."


# Staff accounts -----------------------------------------------------------------------------------


@says("user.created", "Account created")
def user_created(t: Told) -> str:
    return f"{t.actor} created an account for {t.names.person(t.subject)}."


@says("user.updated", "Account changed")
def user_updated(t: Told) -> str:
    return f"{t.actor} changed {t.subject_person()}."


@says("user.roles_changed", "Roles changed")
def user_roles_changed(t: Told) -> str:
    return f"{t.actor} changed {possessive(t.names.person(t.subject))} roles."


@says("user.deactivated", "Account deactivated")
def user_deactivated(t: Told) -> str:
    return f"{t.actor} deactivated {t.subject_person()}."


@says("user.reactivated", "Account reactivated")
def user_reactivated(t: Told) -> str:
    return f"{t.actor} reactivated {t.subject_person()}."


@says("user.invite_issued", "Invitation sent")
def user_invite_issued(t: Told) -> str:
    return f"{t.actor} sent {t.names.person(t.subject)} an invitation to set a password."


@says("user.password_reset_issued", "Password reset link sent")
def user_password_reset_issued(t: Told) -> str:
    return f"{t.actor} issued a password reset link for {t.subject_person()}."


@says("user.password_links_revoked", "Password links cancelled")
def user_password_links_revoked(t: Told) -> str:
    return f"{t.actor} cancelled older password links for {t.subject_person()}."


@says("user.password_set", "Password set")
def user_password_set(t: Told) -> str:
    return f"{t.actor} set a password for {t.subject_person()}."


@says("user.password_changed", "Password changed")
def user_password_changed(t: Told) -> str:
    return f"{t.actor} changed the password of {t.subject_person()}."


@says("user.email_changed", "Email address changed")
def user_email_changed(t: Told) -> str:
    return f"{t.actor} changed the email address of {t.subject_person()}."


@says("user.staff_terms_changed", "Staff type or end date changed")
def user_staff_terms_changed(t: Told) -> str:
    return f"{t.actor} changed the staff type or last day of {t.subject_person()}."


@says("user.end_date_notice_sent", "Last-day notice")
def user_end_date_notice_sent(t: Told) -> str:
    return f"{SYSTEM} told {t.names.person(t.subject)} that their account closes after {t.until('end_date')}."


@says("user.imported", "Account imported")
def user_imported(t: Told) -> str:
    change = {"new": "added", "changed": "updated", "leaving": "marked as leaving"}.get(str(t.details.get("change")), "imported")
    return f"{t.actor} {change} {t.names.person(t.subject)} from the staff list."


@says("staff.imported", "Staff list imported")
def staff_imported(t: Told) -> str:
    return f"{t.actor} imported the staff list: {t.details.get('new', 0)} new, {t.details.get('changed', 0)} changed."


@says("scim.user_created", "Account created by provisioning")
def scim_user_created(t: Told) -> str:
    return f"The school's identity provider created an account for {t.names.person(t.subject)}."


@says("scim.user_changed", "Account changed by provisioning")
def scim_user_changed(t: Told) -> str:
    return f"The school's identity provider changed {possessive(t.names.person(t.subject))} account."


@says("scim.user_restored", "Account restored by provisioning")
def scim_user_restored(t: Told) -> str:
    return f"The school's identity provider restored {possessive(t.names.person(t.subject))} account."


@says("scim.user_deleted", "Account removed by provisioning")
def scim_user_deleted(t: Told) -> str:
    return f"The school's identity provider removed {possessive(t.names.person(t.subject))} account."


@says("scim.group_member_added", "Role given by provisioning")
def scim_group_member_added(t: Told) -> str:
    return f"The school's identity provider gave {t.names.person(t.subject)} the {t.details.get('group', '')} role."


@says("scim.group_member_removed", "Role removed by provisioning")
def scim_group_member_removed(t: Told) -> str:
    return f"The school's identity provider removed the {t.details.get('group', '')} role from {t.names.person(t.subject)}."


# Signing in, passkeys and tokens ------------------------------------------------------------------


@says("auth.signed_in", "Signed in")
def auth_signed_in(t: Told) -> str:
    return f"{t.actor} signed in."


@says("auth.signed_out", "Signed out")
def auth_signed_out(t: Told) -> str:
    return f"{t.actor} signed out."


@says("auth.sign_in_failed", "Sign-in failed")
def auth_sign_in_failed(t: Told) -> str:
    who = t.names.person(t.subject) if t.subject else "someone with an unknown email address"
    return f"A sign-in as {who} failed."


@says("auth.sign_in_throttled", "Sign-in slowed down")
def auth_sign_in_throttled(t: Told) -> str:
    who = t.names.person(t.subject) if t.subject else "an unknown address"
    return f"Too many sign-in attempts as {who}: further attempts were held back."


@says("auth.passkey_failed", "Passkey sign-in failed")
def auth_passkey_failed(t: Told) -> str:
    who = t.names.person(t.subject) if t.subject else "an unknown person"
    return f"A passkey sign-in as {who} failed."


@says("auth.password_reset_requested", "Password reset asked for")
def auth_password_reset_requested(t: Told) -> str:
    return f"Someone asked for a password reset for an address at {t.details.get('email_domain', 'an unknown domain')}."


@says("auth.sso_signed_in", "Signed in with the school's account")
def auth_sso_signed_in(t: Told) -> str:
    return f"{t.actor} signed in with their school account."


@says("auth.sso_identity_linked", "School account linked")
def auth_sso_identity_linked(t: Told) -> str:
    return f"{t.actor} linked their school account for signing in."


@says("auth.sso_refused", "School account sign-in refused")
def auth_sso_refused(t: Told) -> str:
    who = t.names.person(t.subject) if t.subject else "an unknown person"
    return f"A sign-in with a school account as {who} was refused."


@says("passkey.registered", "Passkey added")
def passkey_registered(t: Told) -> str:
    return f"{t.actor} added a passkey named “{t.details.get('name', '')}”."


@says("passkey.removed", "Passkey removed")
def passkey_removed(t: Told) -> str:
    return f"{t.actor} removed a passkey."


@says("api_token.created", "API token made")
def api_token_created(t: Told) -> str:
    return f"{t.actor} made an API token named “{t.details.get('name', '')}”."


@says("api_token.revoked", "API token cancelled")
def api_token_revoked(t: Told) -> str:
    return f"{t.actor} cancelled an API token."


@says("api_token.used", "API token used")
def api_token_used(t: Told) -> str:
    return f"{t.actor} used an API token."


@says("scim_token.created", "Provisioning token made")
def scim_token_created(t: Told) -> str:
    return f"{t.actor} made a provisioning token named “{t.details.get('name', '')}”."


@says("scim_token.revoked", "Provisioning token cancelled")
def scim_token_revoked(t: Told) -> str:
    return f"{t.actor} cancelled a provisioning token."


# Notifications and email --------------------------------------------------------------------------


@says("push.subscribed", "Notifications turned on")
def push_subscribed(t: Told) -> str:
    return f"{t.actor} turned on notifications in a browser."


@says("push.unsubscribed", "Notifications turned off")
def push_unsubscribed(t: Told) -> str:
    return f"{t.actor} turned off notifications in a browser."


@says("push.subscription_refreshed", "Notifications renewed")
def push_subscription_refreshed(t: Told) -> str:
    return f"{t.actor} renewed notifications in a browser."


@says("push.subscription_expired", "Notifications expired")
def push_subscription_expired(t: Told) -> str:
    return f"A browser of {t.names.person(t.details.get('user_id'))} no longer takes notifications; it was removed."


@says("push.subscription_refused", "Notifications refused")
def push_subscription_refused(t: Told) -> str:
    return f"The push service refused a browser of {t.names.person(t.details.get('user_id'))}."


@says("push.message_dropped", "Notification not delivered")
def push_message_dropped(t: Told) -> str:
    return f"A notification could not be delivered after {t.details.get('attempts', '?')} attempts and was dropped."


@says("push.outbox_purged", "Old notifications cleared")
def push_outbox_purged(t: Told) -> str:
    return f"{SYSTEM} cleared {t.count(one='sent notification', many='sent notifications')} older than {t.details.get('kept_days', '?')} days."


@says("push.test_sent", "Test notification")
def push_test_sent(t: Told) -> str:
    return f"{t.actor} sent themselves a test notification."


@says("push.action_redeemed", "Answered from a notification")
def push_action_redeemed(t: Told) -> str:
    return f"{t.actor} answered “{t.details.get('action', '')}” from a notification."


@says("push.action_refused", "Notification answer refused")
def push_action_refused(t: Told) -> str:
    return f"An answer from a notification by {t.actor} was refused."


@says("mail.preferences_changed", "Email preferences changed")
def mail_preferences_changed(t: Told) -> str:
    return f"{t.actor} changed which emails they receive."


@says("mail.approval_fallback_queued", "Approval sent by email")
def mail_approval_fallback_queued(t: Told) -> str:
    return f"A request waited {t.details.get('waited_minutes', '?')} minutes, so it was emailed to {t.names.person(t.details.get('approver_id'))}."


@says("mail.message_dropped", "Email not delivered")
def mail_message_dropped(t: Told) -> str:
    who = t.names.person(t.subject) if t.subject else "an address"
    return f"An email to {who} could not be delivered after {t.details.get('attempts', '?')} attempts and was dropped."


@says("mail.outbox_purged", "Old emails cleared")
def mail_outbox_purged(t: Told) -> str:
    return f"{SYSTEM} cleared {t.count(one='sent email', many='sent emails')} older than {t.details.get('kept_days', '?')} days."


@says("mail.password_reset_unmatched", "Password reset for an unknown address")
def mail_password_reset_unmatched(t: Told) -> str:
    return f"A password reset was asked for an address at {t.details.get('email_domain', '?')} that has no account."


@says("notices.read", "Notices read")
def notices_read(t: Told) -> str:
    return f"{t.actor} marked {t.count(one='notice', many='notices')} as read."


# Personal data, settings, the log itself and retention --------------------------------------------


@says("personal_data.downloaded", "Own data downloaded")
def personal_data_downloaded(t: Told) -> str:
    return f"{t.actor} downloaded their own data (“My data”)."


@says("personal_data.exported", "Subject access export")
def personal_data_exported(t: Told) -> str:
    return f"{t.actor} exported all of {possessive(t.names.person(t.subject))} data for a subject access request."


@says("setting.changed", "Setting changed")
def setting_changed(t: Told) -> str:
    return f"{t.actor} changed the setting “{t.subject.replace('_', ' ')}”."


@says("audit.exported", "Audit log exported")
def audit_exported(t: Told) -> str:
    return f"{t.actor} exported the audit log as CSV."


@says("audit.verified", "Audit log checked")
def audit_verified(t: Told) -> str:
    if t.details.get("ok"):
        return f"{t.actor} checked the audit log: all {t.details.get('verified_count', '')} events intact."
    return f"{t.actor} checked the audit log and found it broken at event {t.details.get('broken_at')}."


@says("audit.head_published", "Audit log head published")
def audit_head_published(t: Told) -> str:
    return f"{SYSTEM} published the audit log's head at event {t.details.get('seq')} for the daily digest."


@says("audit.checkpoint", "Audit log trimmed")
def audit_checkpoint(t: Told) -> str:
    return f"{SYSTEM} removed {t.count('events_removed', 'event', 'events')} past the retention period, up to event {t.details.get('up_to_seq')}."


@says("retention.erased", "Old records erased")
def retention_erased(t: Told) -> str:
    return f"{SYSTEM} erased records past the retention period."


@says("retention.sessions_removed", "Old sessions removed")
def retention_sessions_removed(t: Told) -> str:
    return f"{SYSTEM} removed {t.count(one='ended session', many='ended sessions')}."


@says("retention.sign_in_attempts_removed", "Old sign-in attempts removed")
def retention_sign_in_attempts_removed(t: Told) -> str:
    return f"{SYSTEM} removed {t.count(one='old sign-in attempt', many='old sign-in attempts')}."


@says("retention.password_links_removed", "Old password links removed")
def retention_password_links_removed(t: Told) -> str:
    return f"{SYSTEM} removed {t.count(one='used or expired password link', many='used or expired password links')}."


# The page: names in one batch, and each event's details as labelled fields ------------------------

FIELD_LABELS = {
    "approved_until": "Approved until",
    "wanted_until": "Asked until",
    "area_id": "Area",
    "area_ids": "Areas",
    "moved_to_area_id": "Moved to",
    "borrower_id": "Borrower",
    "person_id": "Person",
    "approver_id": "Approver",
    "user_id": "Person",
    "notified_user_ids": "Told",
    "imei_last4": "IMEI ends in",
    "note_given": "Note given",
    "due_on": "Due back",
    "review_date": "Review by",
    "starts_on": "From",
    "ends_on": "To",
    "end_date": "Last day",
    "personal_device_id": "Device",
    "asset_id": "Equipment",
    "on": "On",
    "pdf": "PDF attached",
    "via": "Through",
    "from": "Before",
    "to": "After",
}
_PERSON_LIST_KEYS = ("notified_user_ids",)
_TIME_KEYS = ("approved_until", "wanted_until", "due_on", "review_date", "starts_on", "ends_on", "end_date", "on", "before")


@dataclass(frozen=True)
class EventView:
    """One event as the audit page shows it."""

    seq: int
    occurred_at: datetime
    sentence: str
    label: str
    fields: list[tuple[str, str]]


def _ids(values: Iterable[object]) -> set[int]:
    return {found for found in (_int(v) for v in values) if found is not None}


def _wanted(events: list[AuditEvent], details: dict[int, dict], links: dict[int, dict[str, list[str]]]) -> dict[str, set[int]]:
    """Every id the page's sentences and fields will name, by table."""
    wanted: dict[str, list[object]] = {
        "user": [],
        "personal_device": [],
        "asset": [],
        "area": [],
        "permission_request": [],
        "policy_version": [],
    }
    for event in events:
        wanted["user"].append(event.actor_id)
        if event.subject_type in wanted:
            wanted[event.subject_type].append(event.subject_id)
        for kind, refs in links.get(event.seq, {}).items():
            if kind in wanted:
                wanted[kind].extend(refs)
        found = details[event.seq]
        wanted["user"].extend(found.get(key) for key in PERSON_KEYS)
        wanted["user"].extend(v for key in _PERSON_LIST_KEYS for v in found.get(key) or [] if isinstance(found.get(key), list))
        wanted["area"].extend(found.get(key) for key in AREA_KEYS)
        wanted["area"].extend(found.get("area_ids") or [] if isinstance(found.get("area_ids"), list) else [])
        wanted["personal_device"].append(found.get("personal_device_id"))
        kind, _dash, ref = str(found.get("device") or "").partition("-")
        if kind in ("personal", "asset"):
            wanted["personal_device" if kind == "personal" else "asset"].append(ref)
        wanted["asset"].append(found.get("asset_id"))
    return {kind: _ids(values) for kind, values in wanted.items()}


def names_for(session: Session, events: list[AuditEvent], details: dict[int, dict]) -> Names:
    """Read every name a page of events needs: a fixed handful of queries, whatever the page holds."""
    names = Names()
    seqs = [event.seq for event in events]
    if not seqs:
        return names
    for seq, kind, ref in session.execute(sa.select(AuditLink.seq, AuditLink.kind, AuditLink.ref).where(AuditLink.seq.in_(seqs))):
        names.links.setdefault(seq, {}).setdefault(kind, []).append(ref)
    wanted = _wanted(events, details, names.links)
    if wanted["permission_request"]:
        rows = session.execute(
            sa.select(
                PermissionRequest.id, PermissionRequest.requester_id, PermissionRequest.device_label, PermissionRequest.area_id
            ).where(PermissionRequest.id.in_(wanted["permission_request"]))
        )
        for row in rows:
            names.requests[row.id] = (row.requester_id, row.device_label, row.area_id)
            wanted["user"].add(row.requester_id)
            wanted["area"].add(row.area_id)
    if wanted["personal_device"]:
        rows = session.execute(
            sa.select(PersonalDevice.id, PersonalDevice.owner_id, PersonalDevice.make, PersonalDevice.model).where(
                PersonalDevice.id.in_(wanted["personal_device"])
            )
        )
        for row in rows:
            names.devices[row.id] = (row.owner_id, f"{row.make} {row.model}".strip())
            wanted["user"].add(row.owner_id)
    if wanted["user"]:
        names.people = dict(
            session.execute(sa.select(User.id, User.display_name).where(User.id.in_(wanted["user"]))).tuples().all()
        )
    if wanted["asset"]:
        rows = session.execute(
            sa.select(SchoolAsset.id, SchoolAsset.name, SchoolAsset.tag).where(SchoolAsset.id.in_(wanted["asset"]))
        )
        names.assets = {row.id: f"{row.name} ({row.tag})" for row in rows}
    if wanted["area"]:
        names.areas = dict(session.execute(sa.select(Area.id, Area.name).where(Area.id.in_(wanted["area"]))).tuples().all())
    if wanted["policy_version"]:
        labels = sa.select(PolicyVersion.id, PolicyVersion.label).where(PolicyVersion.id.in_(wanted["policy_version"]))
        names.policies = dict(session.execute(labels).tuples().all())
    return names


def _plain(value: object) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if value is None or value == "":
        return "none"
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{_label(str(k))}: {_plain(v)}" for k, v in sorted(value.items())) or "none"
    return str(value).replace("_", " ") if isinstance(value, str) and value.isidentifier() else str(value)


def _label(key: str) -> str:
    return FIELD_LABELS.get(key, key.replace("_", " ").capitalize())


def field_value(key: str, value: object, names: Names, occurred_at: datetime | None = None) -> str:
    """One detail as a person reads it: people, areas and devices by name, times in the school's zone."""
    if key in PERSON_KEYS:
        return names.person(value)
    if key in _PERSON_LIST_KEYS and isinstance(value, list):
        return ", ".join(names.person(v) for v in value) or "nobody"
    if key in AREA_KEYS:
        return names.area(value)
    if key == "area_ids" and isinstance(value, list):
        return ", ".join(names.area(v) for v in value)
    if key == "personal_device_id":
        return names.device(value)
    if key == "asset_id":
        return names.asset(value) if value else "none"
    if key == "kind" and isinstance(value, str):
        return _kind_label(value)
    if key == "device" and isinstance(value, str) and value.partition("-")[0] in ("personal", "asset"):
        kind, _dash, ref = value.partition("-")
        return names.device(ref) if kind == "personal" else names.asset(ref)
    if key == "reason" and value in RequestReason.__members__.values():
        return RequestReason(str(value)).label
    if key in _TIME_KEYS and isinstance(value, str):
        return when(value, occurred_at)
    return _plain(value)


def _kind_label(value: str) -> str:
    for kinds in (DeviceKind, AssetKind):
        if value in kinds.__members__.values():
            return kinds(value).label
    return _plain(value)


def fields_for(details: dict, names: Names, occurred_at: datetime | None = None) -> list[tuple[str, str]]:
    return [(_label(key), field_value(key, value, names, occurred_at)) for key, value in sorted(details.items())]


def describe_page(session: Session, events: list[AuditEvent]) -> list[EventView]:
    """A page of events as sentences with labelled fields, its names read in one batch."""
    details = {event.seq: _details(event) for event in events}
    names = names_for(session, events, details)
    views = []
    for event in events:
        told = Told(event, names, details[event.seq])
        views.append(
            EventView(
                seq=event.seq,
                occurred_at=event.occurred_at,
                sentence=SENTENCES.get(event.action, unknown_sentence)(told),
                label=action_label(event.action),
                fields=fields_for(details[event.seq], names, event.occurred_at),
            )
        )
    return views
