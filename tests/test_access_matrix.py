"""The access matrix: every route in the app's URL map, for anonymous, staff, approver, office, admin and governor.

Two tables, and a new route without an entry in one of them fails, so nobody adds a page or an API call
without deciding who it is for:

- ``ACCESS``, for every route: "public", "signed_in" (any role) or the roles that may use it at all.
- ``ID_ROUTES``, for routes whose path names a stored object: the exact answer each role gets when the
  object exists and belongs to somebody else (tests/access_objects.py builds one of each). A refusal there
  can only be the route's role or ownership check, never a missing row. It agrees with ``ACCESS``: a role
  ACCESS refuses is refused here too, and a role let through here is one ACCESS allows.

Which refusal is right (DESIGN.md sections 7, 8 and 10, app/access.py):
- A route for a role answers 403 to anyone without it (``roles_required``), whatever the id.
- Things that are one person's own are hidden from everyone else: another person's devices (the office
  sees all: "devices (mine; office sees all)", "IMEIs are visible to their owner and the office only"),
  permission requests (approvers see all, to decide them), loans (the office sees all), push
  subscriptions, API tokens and passkeys. The services look them up by owner (``owned_device`` and friends),
  so another person's answers 404 exactly as a row that is not there: nobody learns that an id is in use.
  Only the routes naming those objects (``HIDDEN_OBJECTS``) may refuse with 404.
- Anonymous visitors are sent to sign in (pages) or get a 401 problem (API); SCIM answers only its bearer
  token, so every signed-in person gets 401.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, Role
from tests.access_objects import ARGUMENT_FOR_ENDPOINT, OWNER_NAME, accept_current_policy, build_other_peoples_objects
from tests.conftest import CSRF_META
from tests.factories import make_user, sign_in

ACCESS: dict[str, str | tuple[str, ...]] = {
    "admin.deactivate": ("admin",),
    "admin.invite": ("admin",),
    "admin.password_link": ("admin",),
    "admin.password_link_shown": ("admin",),
    "admin.person": ("admin",),
    "admin.reactivate": ("admin",),
    "admin.remove_logo": ("admin",),
    "admin.settings": ("admin",),
    "admin.staff": ("admin",),
    "admin.upload_logo": ("admin",),
    "api.availability": "signed_in",
    "api.availability_week": "signed_in",
    "api.cancel_booking": "signed_in",
    "api.create_booking": "signed_in",
    "api.get_booking": "signed_in",
    "api.list_bookings": "signed_in",
    "api.list_kits": "signed_in",
    "booking_week.asset": "signed_in",
    "booking_week.choose": "signed_in",
    "booking_week.kind": "signed_in",
    "booking_week.kit": "signed_in",
    "bookings.asset_bookable": ("admin", "office"),
    "bookings.cancel": "signed_in",
    "bookings.day": ("admin", "office"),
    "bookings.kit": ("admin", "office"),
    "bookings.kit_bookable": ("admin", "office"),
    "bookings.kits": ("admin", "office"),
    "bookings.mine": "signed_in",
    "bookings.new": "signed_in",
    "bookings.remove_member": ("admin", "office"),
    "bookings.retire_kit": ("admin", "office"),
    "api.check_in": ("office",),
    "api.check_out": ("office",),
    "api.close_stocktake": ("office",),
    "api.create_area": ("admin",),
    "api.create_asset": ("office",),
    "api.create_device": "signed_in",
    "api.create_permission_request": "signed_in",
    "api.create_push_subscription": "signed_in",
    "api.decide_permission_request": ("approver",),
    "api.delete_push_subscription": "signed_in",
    "api.end_permission_request": "signed_in",
    "api.end_standing_permission": ("approver",),
    "api.found": "signed_in",
    "api.get_asset": ("office",),
    "api.get_device": "signed_in",
    "api.get_loan": "signed_in",
    "api.get_permission_request": "signed_in",
    "api.get_stocktake": ("office",),
    "api.grant_standing_permission": ("approver",),
    "api.latest_verification": ("admin", "approver", "governor", "office"),
    "api.list_areas": "signed_in",
    "api.list_assets": ("office",),
    "api.list_audit_events": ("admin", "approver", "governor", "office"),
    "api.list_devices": "signed_in",
    "api.list_loans": "signed_in",
    "api.list_permission_requests": "signed_in",
    "api.list_push_subscriptions": "signed_in",
    "api.list_standing_permissions": "signed_in",
    "api.me": "signed_in",
    "api.me_export": "signed_in",
    "api.now_board": ("approver", "office"),
    "api.openapi_json": "public",
    "api.push_action": "public",
    "api.push_key": "public",
    "api.record_scan": ("office",),
    "api.report_lost": "signed_in",
    "api.retire_device": "signed_in",
    "api.review_permission_request": ("approver",),
    "api.rotate_area_poster": ("admin",),
    "api.start_stocktake": ("office",),
    "api.update_area": ("admin",),
    "api.update_asset": ("office",),
    "api.update_device": "signed_in",
    "api.verify_audit_events": ("admin", "approver", "governor", "office"),
    "api.withdraw_permission_request": "signed_in",
    "audit_log.digest": ("admin", "approver", "governor", "office"),
    "audit_log.export": ("admin", "approver", "governor", "office"),
    "audit_log.index": ("admin", "approver", "governor", "office"),
    "audit_log.names": ("admin", "approver", "governor", "office"),
    "audit_log.verify": ("admin", "approver", "governor", "office"),
    "auth.account": "signed_in",
    "auth.passkey_list": "signed_in",
    "auth.passkey_register": "signed_in",
    "auth.passkey_registration_options": "signed_in",
    "auth.passkey_remove": "signed_in",
    "auth.passkey_sign_in": "public",
    "auth.passkey_sign_in_options": "public",
    "auth.revoke_token": "signed_in",
    "auth.set_password": "public",
    "auth.sign_in": "public",
    "auth.sign_out": "signed_in",
    "auth.tokens": "signed_in",
    "devices.add": "signed_in",
    "devices.edit": "signed_in",
    "devices.found": "signed_in",
    "devices.lost": "signed_in",
    "devices.mine": "signed_in",
    "devices.office_show": ("office",),
    "devices.register": ("office",),
    "devices.report_lost": "signed_in",
    "devices.retire": "signed_in",
    "devices.show": "signed_in",
    "equipment.add": ("office",),
    "equipment.check_in": ("office",),
    "equipment.check_out": ("office",),
    "equipment.close_stocktake": ("office",),
    "equipment.collect_booking": ("office",),
    "equipment.edit": ("office",),
    "equipment.export_assets": ("office",),
    "equipment.export_loans": ("office",),
    "equipment.find": ("office",),
    "equipment.import_assets": ("office",),
    "equipment.import_template": ("office",),
    "equipment.index": ("office",),
    "equipment.kit_check_in": ("office",),
    "equipment.kit_check_out": ("office",),
    "equipment.labels": ("office",),
    "equipment.loan_list": ("office",),
    "equipment.my_loans": "signed_in",
    "equipment.loan_terms_page": "signed_in",
    "equipment.overdue": ("office",),
    "equipment.retire": ("office",),
    "equipment.scan": ("office",),
    "equipment.scanned": "signed_in",
    "equipment.show": ("office",),
    "equipment.start_stocktake": ("office",),
    "equipment.stocktake": ("office",),
    "equipment.stocktake_csv": ("office",),
    "equipment.stocktake_list": ("office",),
    "equipment.stocktake_scan": ("office",),
    "mail.forgot_password": "public",
    "mail.preferences": "signed_in",
    "main.healthz": "public",
    "main.home": "signed_in",
    "main.manifest": "public",
    "main.mark_notices_read": "signed_in",
    "main.my_data": "signed_in",
    "main.my_data_download": "signed_in",
    "main.notices": "signed_in",
    "main.more": "signed_in",
    "permissions.scan": "signed_in",
    "main.offline": "public",
    "main.privacy": "public",
    "main.school_logo": "public",
    "main.service_worker": "public",
    "permissions.approval": ("approver",),
    "permissions.area_edit": ("admin",),
    "permissions.area_new": ("admin",),
    "permissions.area_poster": ("admin",),
    "permissions.area_posters": ("admin",),
    "permissions.area_rotate": ("admin",),
    "permissions.areas": ("admin",),
    "permissions.ask": "signed_in",
    "permissions.ask_submit": "signed_in",
    "permissions.cover": ("admin", "approver"),
    "permissions.cover_away": ("approver",),
    "permissions.cover_save": ("admin", "approver"),
    "permissions.decision": ("approver",),
    "permissions.inbox": ("approver",),
    "permissions.my_requests": "signed_in",
    "permissions.now": ("approver", "office"),
    "permissions.request_end": "signed_in",
    "permissions.request_status": "signed_in",
    "permissions.request_withdraw": "signed_in",
    "permissions.review": ("approver",),
    "permissions.standing": ("approver",),
    "permissions.standing_end": ("approver",),
    "push.remove": "signed_in",
    "push.send_test": "signed_in",
    "push.settings": "signed_in",
    "admin.subject_access_export": ("admin",),
    "devices.office_reveal": ("office",),
    "policy.accept": "signed_in",
    "policy.acceptances": ("admin", "approver", "office"),
    "policy.concern": "signed_in",
    "policy.coverage": ("admin", "approver", "office"),
    "policy.declare_no_device": "signed_in",
    "policy.document": "signed_in",
    "policy.publish": ("admin",),
    "policy.read": "signed_in",
    "policy.remind_to_register": ("admin", "approver", "office"),
    "policy.remind": ("admin", "approver", "office"),
    "policy.withdraw_no_device": "signed_in",
    "reports.index": ("admin", "approver", "governor", "office"),
    "reports.loans_csv": ("admin", "approver", "governor", "office"),
    "reports.permissions_csv": ("admin", "approver", "governor", "office"),
    "reports.policy_csv": ("admin", "approver", "governor", "office"),
    "sso.callback": "public",
    "sso.rules": ("admin",),
    "sso.start": "public",
    "provisioning.revoke_scim_token": ("admin",),
    "provisioning.scim_tokens": ("admin",),
    "provisioning.staff_import_apply": ("admin",),
    "provisioning.staff_import_page": ("admin",),
    "provisioning.staff_import_template": ("admin",),
    # SCIM answers only a provisioning token (Authorization: Bearer), never a signed-in person: 401 to every role.
    "scim.change_group": (),
    "scim.create_group": (),
    "scim.create_user": (),
    "scim.delete_user": (),
    "scim.get_group": (),
    "scim.get_user": (),
    "scim.list_groups": (),
    "scim.list_users": (),
    "scim.patch_group": (),
    "scim.patch_user": (),
    "scim.replace_user": (),
    "scim.resource_type": (),
    "scim.resource_types": (),
    "scim.schema": (),
    "scim.schemas": (),
    "scim.search_root": (),
    "scim.search_users": (),
    "scim.service_provider": (),
    "scim.unknown_endpoint": (),
}
ROLES = ["anonymous", "staff", "approver", "office", "admin", "governor"]

OK = "ok"  # let through the role and ownership checks: any answer but 401, 403, 404 or a sign-in redirect
SIGN_IN = "sign-in"  # 302 to the sign-in page

# Routes whose path names another person's object or a role's object, with the answer for each role.
#                                        anonymous  staff    approver  office   admin    governor
ID_ROUTES: dict[str, tuple[object, ...]] = {
    # Staff accounts: the admin's.
    "admin.deactivate":                  (SIGN_IN,  403,     403,      403,     OK,      403),
    "admin.password_link":               (SIGN_IN,  403,     403,      403,     OK,      403),
    "admin.password_link_shown":         (SIGN_IN,  403,     403,      403,     OK,      403),
    "admin.person":                      (SIGN_IN,  403,     403,      403,     OK,      403),
    "admin.reactivate":                  (SIGN_IN,  403,     403,      403,     OK,      403),
    # Personal devices: the owner's; the office reads every device but changes none.
    "devices.show":                      (SIGN_IN,  404,     404,      404,     404,     404),
    "devices.edit":                      (SIGN_IN,  404,     404,      404,     404,     404),
    "devices.lost":                      (SIGN_IN,  404,     404,      404,     404,     404),
    "devices.report_lost":               (SIGN_IN,  404,     404,      404,     404,     404),
    "devices.found":                     (SIGN_IN,  404,     404,      404,     404,     404),
    "devices.retire":                    (SIGN_IN,  404,     404,      404,     404,     404),
    "devices.office_show":               (SIGN_IN,  403,     403,      OK,      403,     403),
    "api.get_device":                    (401,      404,     404,      OK,      404,     404),
    "api.update_device":                 (401,      404,     404,      404,     404,     404),
    "api.report_lost":                   (401,      404,     404,      404,     404,     404),
    "api.found":                         (401,      404,     404,      404,     404,     404),
    "api.retire_device":                 (401,      404,     404,      404,     404,     404),
    # Permission requests: the requester's; approvers read and decide every one.
    "permissions.request_status":        (SIGN_IN,  404,     404,      404,     404,     404),
    "permissions.request_end":           (SIGN_IN,  404,     404,      404,     404,     404),
    "permissions.request_withdraw":      (SIGN_IN,  404,     404,      404,     404,     404),
    "permissions.approval":              (SIGN_IN,  403,     OK,       403,     403,     403),
    "permissions.decision":              (SIGN_IN,  403,     OK,       403,     403,     403),
    "permissions.review":                (SIGN_IN,  403,     OK,       403,     403,     403),
    "api.get_permission_request":        (401,      404,     OK,       404,     404,     404),
    "api.end_permission_request":        (401,      404,     404,      404,     404,     404),
    "api.withdraw_permission_request":   (401,      404,     404,      404,     404,     404),
    "api.decide_permission_request":     (401,      403,     OK,       403,     403,     403),
    "api.review_permission_request":     (401,      403,     OK,       403,     403,     403),
    # Standing permissions: approvers'.
    "permissions.standing_end":          (SIGN_IN,  403,     OK,       403,     403,     403),
    "api.end_standing_permission":       (401,      403,     OK,       403,     403,     403),
    # Areas: the admin's; anyone signed in may open an area's poster link to ask there.
    "permissions.area_edit":             (SIGN_IN,  403,     403,      403,     OK,      403),
    "permissions.area_poster":           (SIGN_IN,  403,     403,      403,     OK,      403),
    "permissions.area_rotate":           (SIGN_IN,  403,     403,      403,     OK,      403),
    "api.update_area":                   (401,      403,     403,      403,     OK,      403),
    "api.rotate_area_poster":            (401,      403,     403,      403,     OK,      403),
    "permissions.ask":                   (SIGN_IN,  OK,      OK,       OK,      OK,      OK),
    "permissions.ask_submit":            (SIGN_IN,  OK,      OK,       OK,      OK,      OK),
    # School assets, loans and stock-takes: the office's; a scanned label opens for anyone signed in.
    "equipment.show":                    (SIGN_IN,  403,     403,      OK,      403,     403),
    "equipment.edit":                    (SIGN_IN,  403,     403,      OK,      403,     403),
    "equipment.retire":                  (SIGN_IN,  403,     403,      OK,      403,     403),
    "equipment.check_out":               (SIGN_IN,  403,     403,      OK,      403,     403),
    "equipment.check_in":                (SIGN_IN,  403,     403,      OK,      403,     403),
    "equipment.stocktake":               (SIGN_IN,  403,     403,      OK,      403,     403),
    "equipment.stocktake_csv":           (SIGN_IN,  403,     403,      OK,      403,     403),
    "equipment.stocktake_scan":          (SIGN_IN,  403,     403,      OK,      403,     403),
    "equipment.close_stocktake":         (SIGN_IN,  403,     403,      OK,      403,     403),
    "equipment.scanned":                 (SIGN_IN,  OK,      OK,       OK,      OK,      OK),
    "api.get_asset":                     (401,      403,     403,      OK,      403,     403),
    "api.update_asset":                  (401,      403,     403,      OK,      403,     403),
    "api.check_out":                     (401,      403,     403,      OK,      403,     403),
    "api.check_in":                      (401,      403,     403,      OK,      403,     403),
    "api.get_loan":                      (401,      404,     404,      OK,      404,     404),
    # The borrower's own terms: only they accept them (the office records an in-person acceptance at check-out).
    "equipment.loan_terms_page":         (SIGN_IN,  404,     404,      404,     404,     404),
    "api.get_stocktake":                 (401,      403,     403,      OK,      403,     403),
    "api.record_scan":                   (401,      403,     403,      OK,      403,     403),
    "api.close_stocktake":               (401,      403,     403,      OK,      403,     403),
    # Bookings: the person's own (and whoever made it); the office and admins see and cancel every one.
    "bookings.cancel":                   (SIGN_IN,  404,     404,      OK,      OK,      404),
    "api.get_booking":                   (401,      404,     404,      OK,      OK,      404),
    "api.cancel_booking":                (401,      404,     404,      OK,      OK,      404),
    # Who may book an asset, and kits: the office's and the admins'.
    "bookings.asset_bookable":           (SIGN_IN,  403,     403,      OK,      OK,      403),
    "bookings.kit":                      (SIGN_IN,  403,     403,      OK,      OK,      403),
    "bookings.kit_bookable":             (SIGN_IN,  403,     403,      OK,      OK,      403),
    "bookings.remove_member":            (SIGN_IN,  403,     403,      OK,      OK,      403),
    "bookings.retire_kit":               (SIGN_IN,  403,     403,      OK,      OK,      403),
    # The week at a glance: anything bookable, for everyone signed in.
    "booking_week.asset":                (SIGN_IN,  OK,      OK,       OK,      OK,      OK),
    "booking_week.kit":                  (SIGN_IN,  OK,      OK,       OK,      OK,      OK),
    # Lending a kit whole, and handing over a booking: the office's counter.
    "equipment.kit_check_out":           (SIGN_IN,  403,     403,      OK,      403,     403),
    "equipment.kit_check_in":            (SIGN_IN,  403,     403,      OK,      403,     403),
    "equipment.collect_booking":         (SIGN_IN,  403,     403,      OK,      403,     403),
    # One person's own sign-in and notification settings.
    "auth.passkey_remove":               (SIGN_IN,  404,     404,      404,     404,     404),
    "auth.revoke_token":                 (SIGN_IN,  404,     404,      404,     404,     404),
    "push.remove":                       (SIGN_IN,  404,     404,      404,     404,     404),
    "api.delete_push_subscription":      (401,      404,     404,      404,     404,     404),
    "provisioning.revoke_scim_token":    (SIGN_IN,  403,     403,      403,     OK,      403),
    # Reads of personal data: the office reveals an IMEI; the admin exports a person's data.
    "devices.office_reveal":             (SIGN_IN,  403,     403,      OK,      403,     403),
    "admin.subject_access_export":       (SIGN_IN,  403,     403,      403,     OK,      403),
    # The school's policy is for everyone signed in to read.
    "policy.document":                   (SIGN_IN,  OK,      OK,       OK,      OK,      OK),
    # The link is the credential (whoever holds it sets that person's password); the logo is public.
    "auth.set_password":                 (OK,       OK,      OK,       OK,      OK,      OK),
    "main.school_logo":                  (OK,       OK,      OK,       OK,      OK,      OK),
    # SCIM answers only a provisioning token (Authorization: Bearer), never a signed-in person.
    "scim.get_user":                     (401,      401,     401,      401,     401,     401),
    "scim.replace_user":                 (401,      401,     401,      401,     401,     401),
    "scim.patch_user":                   (401,      401,     401,      401,     401,     401),
    "scim.delete_user":                  (401,      401,     401,      401,     401,     401),
    "scim.get_group":                    (401,      401,     401,      401,     401,     401),
    "scim.patch_group":                  (401,      401,     401,      401,     401,     401),
    "scim.change_group":                 (401,      401,     401,      401,     401,     401),
}  # fmt: skip

# Routes with a path argument that names no stored object (a file, a provider, a SCIM schema): in ACCESS.
NOT_AN_OBJECT = {
    "static",
    "sso.start",
    "sso.callback",
    "scim.resource_type",
    "scim.schema",
    "scim.unknown_endpoint",
    "booking_week.kind",
}

# The path arguments naming things that are one person's own, hidden from everyone else by a 404.
HIDDEN_OBJECTS = {"device_id", "request_id", "loan_id", "subscription_id", "token_id", "passkey_id", "booking_id"}


def _sample_path(rule) -> str:
    path = rule.rule
    for argument in rule.arguments:
        path = re.sub(rf"<(?:int:|path:)?{argument}>", "999999" if f"<int:{argument}>" in rule.rule else "zz-no-such", path)
    return path


def _client_for(app, role: str):
    client = app.test_client()
    if role != "anonymous":
        extra = () if role == "staff" else (Role(role),)
        visitor = make_user(*extra, name=f"Matrix {role}")
        accept_current_policy(visitor)
        sign_in(client, visitor)
    token = CSRF_META.search(client.get("/privacy").get_data(as_text=True)).group(1)
    return client, token


def _call(client, token: str, path: str, method: str):
    headers = {"X-CSRFToken": token} if method != "GET" else {}
    response = client.open(
        path, method=method, headers=headers, json={} if path.startswith("/api/") and method != "GET" else None
    )
    response.get_data()  # read (and keep) the body before the response is closed
    response.close()
    return response


def _sent_to_sign_in(response) -> bool:
    return response.status_code == 302 and "/sign-in" in response.headers.get("Location", "")


def _endpoints(app) -> set[str]:
    return {rule.endpoint for rule in app.url_map.iter_rules()}


def test_every_route_has_an_entry(app):
    endpoints = _endpoints(app) - {"static"}
    assert endpoints - set(ACCESS) == set(), "routes without an access entry"
    assert set(ACCESS) - endpoints == set(), "entries for routes that no longer exist"


def _allowed(access, role: str) -> bool:
    if access == "public":
        return True
    if role == "anonymous":
        return False
    return access == "signed_in" or role in access


def test_the_real_object_table_agrees_with_who_may_use_each_route():
    disagree = [
        f"{endpoint} for {role}: ACCESS says {'allowed' if _allowed(ACCESS[endpoint], role) else 'refused'}, ID_ROUTES {answer}"
        for endpoint, answers in ID_ROUTES.items()
        for role, answer in zip(ROLES, answers, strict=True)
        if (answer == OK and not _allowed(ACCESS[endpoint], role))
        or (answer in (401, 403, SIGN_IN) and _allowed(ACCESS[endpoint], role))
    ]
    assert disagree == []


def test_every_route_with_an_id_is_tried_on_a_real_object(app):
    """A new route naming an object by id fails here until ID_ROUTES says what each role gets for it."""
    with_ids = {rule.endpoint for rule in app.url_map.iter_rules() if rule.arguments} - NOT_AN_OBJECT
    assert with_ids - set(ID_ROUTES) == set(), "routes with an id missing from ID_ROUTES"
    assert set(ID_ROUTES) - with_ids == set(), "ID_ROUTES entries that are not routes with an id"
    assert _endpoints(app) >= NOT_AN_OBJECT
    assert all(len(answers) == len(ROLES) for answers in ID_ROUTES.values())


def test_404_only_where_the_object_is_hidden_from_others(app):
    """Role refusals are 403; a 404 is right only for a route naming one person's own thing."""
    rules = {rule.endpoint: rule for rule in app.url_map.iter_rules()}
    hiding = set()
    for endpoint, answers in ID_ROUTES.items():
        if 404 in answers:
            names = ARGUMENT_FOR_ENDPOINT.get(endpoint, {})
            arguments = {names.get(argument, argument) for argument in rules[endpoint].arguments}
            assert arguments & HIDDEN_OBJECTS, f"{endpoint} hides an object that is not one person's own"
            hiding.add(endpoint)
    assert len(hiding) >= 20


@pytest.mark.sqlite_only
@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_the_expected_answer(app, role):
    """Routes without an id (and those naming no stored object, with sample values)."""
    client, token = _client_for(app, role)
    wrong = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint in {"static", "auth.sign_out"} or rule.endpoint in ID_ROUTES:
            continue
        expected = ACCESS[rule.endpoint]
        path = _sample_path(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = _call(client, token, path, method)
            status = response.status_code
            to_sign_in = _sent_to_sign_in(response)
            allowed = _allowed(expected, role)
            if allowed and (status in (401, 403) or (to_sign_in and expected != "public" and role != "anonymous")):
                wrong.append(f"{method} {path}: {role} should be let in, got {status}")
            if not allowed:
                refused = status in (401, 403, 404) or to_sign_in
                if not refused:
                    wrong.append(f"{method} {path}: {role} should be refused, got {status}")
    assert wrong == []


@pytest.fixture
def others_objects(app):
    """One of everything an id route can name, none of it the visitor's (built once per test)."""
    return build_other_peoples_objects()


def _audit_count() -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))


@pytest.mark.parametrize("role", ROLES)
def test_other_peoples_objects_answer_each_role_as_the_table_says(app, others_objects, role):
    """Every id route, every method, on an object that exists: the exact refusal, nothing recorded, nothing shown.

    Nobody but the office ever sees the owner's full IMEI (DESIGN.md section 7), refused or let through.

    Reads go first, then changes, each in path order, so an allowed change (the admin rotating a poster)
    never makes a later read of the same object a 404.
    """
    client, token = _client_for(app, role)
    column = ROLES.index(role)
    calls = [
        (method, rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint in ID_ROUTES
        for method in rule.methods - {"HEAD", "OPTIONS"}
    ]
    calls.sort(key=lambda call: (call[0] != "GET", call[1].rule, call[0]))
    wrong = []
    for method, rule in calls:
        expected = ID_ROUTES[rule.endpoint][column]
        path = others_objects.path_for(rule)
        before = _audit_count()
        response = _call(client, token, path, method)
        status, recorded = response.status_code, _audit_count() - before
        seen = f"{method} {path} ({rule.endpoint}) as {role}: got {status}"
        body = response.get_data()  # bytes: the logo is an image
        imei, name = others_objects.owner_imei.encode(), OWNER_NAME.encode()
        if role != "office" and imei in body:
            wrong.append(f"{seen}: shows the owner's IMEI (the owner's and the office's only)")
        if expected == OK:
            if status in (401, 403, 404) or _sent_to_sign_in(response):
                wrong.append(f"{seen}, should be let through")
            continue
        if expected == SIGN_IN:
            if not _sent_to_sign_in(response):
                wrong.append(f"{seen}, should be sent to sign in")
        elif status != expected:
            wrong.append(f"{seen}, should be {expected}")
        if recorded:
            wrong.append(f"{seen}: a refused call recorded {recorded} audit event(s)")
        if name in body or imei in body:
            wrong.append(f"{seen}: the refusal shows the owner's name or IMEI")
    assert wrong == []
    assert len(calls) >= 80
