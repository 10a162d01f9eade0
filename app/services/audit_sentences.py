"""The audit log in plain English: one sentence function per kind of event.

Each function gets a ``Told``: the event, its details and the page's names (read in one batch by
``audit_names.names_for``, never once per event). ``describe_page`` turns a page of events into what
the audit page shows: a sentence, the kind's label and the details as labelled fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.clock import format_date, to_local
from app.models import AuditEvent, BookableBy
from app.services.audit_names import (
    ERASED_AREA,
    ERASED_DEVICE,
    ERASED_PERSON,
    Names,
    as_id,
    fields_for,
    names_for,
    possessive,
    when,
)
from app.services.settings import defined_settings

SYSTEM = "Lanyard"


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
        found = self.names.devices.get(as_id(device_id) or 0)
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
        found = self.names.requests.get(as_id(self.subject) or 0)
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
        found = self.names.requests.get(as_id(self.subject) or 0)
        if found is not None:
            return self.names.area(found[2])
        area = self.details.get("area_id") or self.linked("area")
        return self.names.area(area)

    def until(self, key: str = "approved_until") -> str:
        return when(self.details.get(key), self.event.occurred_at)

    def named(self, key: str = "name", before: str = " named") -> str:
        """' named “Phone”' when the detail is there, else nothing."""
        value = str(self.details.get(key) or "").strip()
        return f"{before} “{value}”" if value else ""

    def after(self, key: str, unit: str, before: str = " after") -> str:
        """' after 3 attempts' when the detail is there, else nothing."""
        value = self.details.get(key)
        return f"{before} {value} {unit}" if isinstance(value, int) and not isinstance(value, bool) else ""

    def count(self, key: str = "count", one: str = "person", many: str = "people") -> str:
        number = self.details.get(key) or 0
        return f"{number} {one if number == 1 else many}"


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
    "booking.": "Bookings",
    "kit.": "Kits",
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


def read(told: Told) -> str:
    """The event's sentence, starting with a capital ("A person since erased ...")."""
    text = SENTENCES.get(told.event.action, unknown_sentence)(told)
    return text[:1].upper() + text[1:]


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
    outcome = str(t.details.get("outcome") or "").replace("_", " ")
    ending = f": {outcome}" if outcome else ""
    return f"{t.actor} reviewed the emergency override for {t.request_device()} in {t.request_area()}{ending}."


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
    return f"The request for {t.request_device()} in {t.request_area()} waited{t.after('waited_minutes', 'minutes', '')} and went to more approvers."


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
    return f"{t.actor} searched the device register{t.named('text', ' for')}."


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


@says("loan.terms_accepted", "Equipment terms accepted")
def loan_terms_accepted(t: Told) -> str:
    borrower = t.names.person(t.details.get("borrower_id"))
    asset = t.names.asset(t.subject)
    if t.details.get("via") == "in_person":
        return f"{t.actor} recorded that {borrower} accepted the terms for {asset} in person."
    return f"{borrower} accepted the terms for {asset} on their own phone."


@says("loan.reminder_sent", "Loan reminder")
def loan_reminder_sent(t: Told) -> str:
    return f"{SYSTEM} reminded {t.names.person(t.details.get('borrower_id'))} to return {t.names.asset(t.subject)}."


@says("loan.overdue_summary_sent", "Overdue loans summary")
def loan_overdue_summary_sent(t: Told) -> str:
    return f"{SYSTEM} sent the office the summary of {t.count('overdue', 'overdue loan', 'overdue loans')}."


def _booked_thing(t: Told) -> str:
    kit = str(t.details.get("kit") or "").strip()
    return kit or t.names.asset(t.details.get("asset_id"))


def _booked_slot(t: Told) -> str:
    """Tuesday 08/12/2026, P3-P4 (or 11:10-12:10; a slot over several days gives both ends)."""
    try:
        start = to_local(datetime.fromisoformat(str(t.details.get("starts_at"))))
        end = to_local(datetime.fromisoformat(str(t.details.get("ends_at"))))
    except ValueError:
        return "an unknown time"
    if start.date() != end.date():
        return f"{start:%A} {format_date(start)} {start:%H:%M} to {end:%A} {format_date(end)} {end:%H:%M}"
    return f"{start:%A} {format_date(start)}, {t.details.get('periods') or f'{start:%H:%M}-{end:%H:%M}'}"


def _for_whom(t: Told) -> str:
    person = t.details.get("person_id")
    return "" if str(person) == str(t.event.actor_id or "") else f" for {t.names.person(person)}"


@says("booking.created", "Equipment booked")
def booking_created(t: Told) -> str:
    return f"{t.actor} booked {_booked_thing(t)}{_for_whom(t)} for {_booked_slot(t)}."


@says("booking.cancelled", "Booking cancelled")
def booking_cancelled(t: Told) -> str:
    whose = (
        "their"
        if str(t.details.get("person_id")) == str(t.event.actor_id or "")
        else possessive(t.names.person(t.details.get("person_id")))
    )
    return f"{t.actor} cancelled {whose} booking of {_booked_thing(t)} for {_booked_slot(t)}."


@says("booking.bookable_changed", "Who may book changed")
def booking_bookable_changed(t: Told) -> str:
    labels = {v.value: v.label.lower() for v in BookableBy}
    to = labels.get(str(t.details.get("to") or ""), "nobody")
    thing = t.names.asset(t.subject) if t.event.subject_type == "asset" else str(t.details.get("name") or "a kit")
    return f"{t.actor} made {thing} bookable by {to}."


def _kit(t: Told) -> str:
    name = str(t.details.get("name") or "").strip()
    return f"the kit {name}" if name else "a kit"


@says("kit.created", "Kit created")
def kit_created(t: Told) -> str:
    tag = str(t.details.get("tag") or "").strip()
    return f"{t.actor} created {_kit(t)}{f' ({tag})' if tag else ''}."


@says("kit.member_added", "Added to a kit")
def kit_member_added(t: Told) -> str:
    return f"{t.actor} put {t.names.asset(t.details.get('asset_id'))} into {_kit(t)}."


@says("kit.member_removed", "Taken out of a kit")
def kit_member_removed(t: Told) -> str:
    return f"{t.actor} took {t.names.asset(t.details.get('asset_id'))} out of {_kit(t)}."


@says("kit.retired", "Kit retired")
def kit_retired(t: Told) -> str:
    return f"{t.actor} retired {_kit(t)}."


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
    review = f", to be reviewed by {t.until('review_date')}" if t.details.get("review_date") else ""
    return f"{t.actor} published the policy{t.named('label', '')}{review}."


@says("policy.accepted", "Policy accepted")
def policy_accepted(t: Told) -> str:
    return f"{t.actor} accepted the policy{t.named('label', '')}."


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
    return f"The school's identity provider gave {t.names.person(t.subject)} a role{t.named('group', '')}."


@says("scim.group_member_removed", "Role removed by provisioning")
def scim_group_member_removed(t: Told) -> str:
    return f"The school's identity provider removed a role{t.named('group', '')} from {t.names.person(t.subject)}."


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
    return f"{t.actor} added a passkey{t.named()}."


@says("passkey.removed", "Passkey removed")
def passkey_removed(t: Told) -> str:
    return f"{t.actor} removed a passkey."


@says("api_token.created", "API token made")
def api_token_created(t: Told) -> str:
    return f"{t.actor} made an API token{t.named()}."


@says("api_token.revoked", "API token cancelled")
def api_token_revoked(t: Told) -> str:
    return f"{t.actor} cancelled an API token."


@says("api_token.used", "API token used")
def api_token_used(t: Told) -> str:
    return f"{t.actor} used an API token."


@says("scim_token.created", "Provisioning token made")
def scim_token_created(t: Told) -> str:
    return f"{t.actor} made a provisioning token{t.named()}."


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
    return f"A notification could not be delivered{t.after('attempts', 'attempts')} and was dropped."


@says("push.outbox_purged", "Old notifications cleared")
def push_outbox_purged(t: Told) -> str:
    return f"{SYSTEM} cleared {t.count(one='sent notification', many='sent notifications')}{t.after('kept_days', 'days', ' older than')}."


@says("push.test_sent", "Test notification")
def push_test_sent(t: Told) -> str:
    return f"{t.actor} sent themselves a test notification."


@says("push.action_redeemed", "Answered from a notification")
def push_action_redeemed(t: Told) -> str:
    return f"{t.actor} answered{t.named('action', '')} from a notification."


@says("push.action_refused", "Notification answer refused")
def push_action_refused(t: Told) -> str:
    return f"An answer from a notification by {t.actor} was refused."


@says("mail.preferences_changed", "Email preferences changed")
def mail_preferences_changed(t: Told) -> str:
    return f"{t.actor} changed which emails they receive."


@says("mail.approval_fallback_queued", "Approval sent by email")
def mail_approval_fallback_queued(t: Told) -> str:
    return f"A request waited{t.after('waited_minutes', 'minutes', '')}, so it was emailed to {t.names.person(t.details.get('approver_id'))}."


@says("mail.message_dropped", "Email not delivered")
def mail_message_dropped(t: Told) -> str:
    who = t.names.person(t.subject) if t.subject else "an address"
    return f"An email to {who} could not be delivered{t.after('attempts', 'attempts')} and was dropped."


@says("mail.outbox_purged", "Old emails cleared")
def mail_outbox_purged(t: Told) -> str:
    return f"{SYSTEM} cleared {t.count(one='sent email', many='sent emails')}{t.after('kept_days', 'days', ' older than')}."


@says("mail.password_reset_unmatched", "Password reset for an unknown address")
def mail_password_reset_unmatched(t: Told) -> str:
    return f"A password reset was asked for an address{t.named('email_domain', ' at')} that has no account."


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
    labels = {definition.key: definition.label for definition in defined_settings()}
    return f"{t.actor} changed the setting “{labels.get(t.subject, t.subject.replace('_', ' '))}”."


@says("audit.exported", "Audit log exported")
def audit_exported(t: Told) -> str:
    return f"{t.actor} exported the audit log as CSV."


@says("audit.verified", "Audit log checked")
def audit_verified(t: Told) -> str:
    if t.details.get("ok"):
        return f"{t.actor} checked the audit log: all {t.details.get('verified_count', '')} events intact."
    if t.details.get("broken_at") is None:
        return f"{t.actor} checked the audit log and found a problem."
    return f"{t.actor} checked the audit log and found it broken at event {t.details['broken_at']}."


@says("audit.head_published", "Audit log head published")
def audit_head_published(t: Told) -> str:
    return f"{SYSTEM} published the audit log's head{t.after('seq', '', ' at event').rstrip()} for the daily digest."


@says("audit.checkpoint", "Audit log trimmed")
def audit_checkpoint(t: Told) -> str:
    return f"{SYSTEM} removed {t.count('events_removed', 'event', 'events')} past the retention period{t.after('up_to_seq', '', ', up to event').rstrip()}."


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


# The page ---------------------------------------------------------------------------------------


# Kits lent whole, and bookings collected, released and reminded (issue 17: kit_loans, booking_loans) ----


def _thing(t: Told) -> str:
    return str(t.details.get("thing") or "").strip() or "the equipment"


def _slot(t: Told) -> str:
    slot = str(t.details.get("slot") or "").strip()
    return f" ({slot})" if slot else ""


@says("kit.checked_out", "Kit lent")
def kit_checked_out(t: Told) -> str:
    return (
        f"{t.actor} lent all {t.count('count', 'item', 'items')} of {_thing(t)} to "
        f"{t.names.person(t.details.get('borrower_id'))}, due back {t.until('due_on')}."
    )


@says("kit.checked_in", "Kit returned")
def kit_checked_in(t: Told) -> str:
    missing = [str(tag) for tag in t.details.get("missing_tags") or []]
    back = f"{t.details.get('returned', 0)} of {t.details.get('out', 0)} came back"
    gone = f"; not returned: {', '.join(missing)}" if missing else ""
    return f"{t.actor} checked in {_thing(t)} from {t.other_person()}: {back}{gone}."


@says("loan.terms_accepted_together", "Equipment terms accepted (several items)")
def loan_terms_accepted_together(t: Told) -> str:
    return f"{t.actor} accepted the terms for {t.count('count', 'item', 'items')} lent to them together, on their own phone."


@says("booking.collected", "Booking collected")
def booking_collected(t: Told) -> str:
    person = t.names.person(t.details.get("borrower_id"))
    return f"{t.actor} lent {_thing(t)} to {person} for their booking{_slot(t)}, due back at its end."


@says("booking.released", "Booking released (not collected)")
def booking_released(t: Told) -> str:
    person = possessive(t.names.person(t.details.get("booked_for_id")))
    return f"{SYSTEM} released {person} booking of {_thing(t)}{_slot(t)}: it was not collected in time."


@says("booking.reminder_sent", "Booking reminder")
def booking_reminder_sent(t: Told) -> str:
    return f"{SYSTEM} reminded {t.names.person(t.details.get('booked_for_id'))} that {_thing(t)} is booked for them{_slot(t)}."


@says("booking.overdue_told", "Booked equipment not back")
def booking_overdue_told(t: Told) -> str:
    person = t.names.person(t.details.get("booked_for_id"))
    return f"{SYSTEM} told {person} that {_thing(t)} was not back at the end of their booking{_slot(t)}."


@says("booking.completed", "Booking completed")
def booking_completed(t: Told) -> str:
    person = possessive(t.names.person(t.details.get("booked_for_id")))
    return f"{_thing(t)} is back: {person} booking{_slot(t)} is complete."


@dataclass(frozen=True)
class EventView:
    """One event as the audit page shows it."""

    seq: int
    occurred_at: datetime
    sentence: str
    label: str
    fields: list[tuple[str, str]]


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
                sentence=read(told),
                label=action_label(event.action),
                fields=fields_for(details[event.seq], names, event.occurred_at),
            )
        )
    return views
