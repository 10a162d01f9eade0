"""The access matrix: every route in the app's URL map, for anonymous, staff, approver, office, admin and governor.

Each endpoint names who may use it: "public", "signed_in" (any role) or the roles that may. A new route
without an entry here fails, so nobody adds a page or an API call without deciding who it is for.
Sample ids name no object, so an allowed role may get 404 but never 401/403, and a refused role gets
403 (or 404, which also reveals nothing), never a success.
"""

from __future__ import annotations

import re

import pytest

from app.models import Role
from tests.conftest import CSRF_META
from tests.factories import make_user, sign_in

pytestmark = pytest.mark.sqlite_only

ACCESS: dict[str, str | tuple[str, ...]] = {
    'admin.deactivate': ('admin',),
    'admin.invite': ('admin',),
    'admin.password_link': ('admin',),
    'admin.password_link_shown': ('admin',),
    'admin.person': ('admin',),
    'admin.reactivate': ('admin',),
    'admin.remove_logo': ('admin',),
    'admin.settings': ('admin',),
    'admin.staff': ('admin',),
    'admin.upload_logo': ('admin',),
    'api.check_in': ('office',),
    'api.check_out': ('office',),
    'api.close_stocktake': ('office',),
    'api.create_area': ('admin',),
    'api.create_asset': ('office',),
    'api.create_device': 'signed_in',
    'api.create_permission_request': 'signed_in',
    'api.create_push_subscription': 'signed_in',
    'api.decide_permission_request': ('approver',),
    'api.delete_push_subscription': 'signed_in',
    'api.end_permission_request': 'signed_in',
    'api.end_standing_permission': ('approver',),
    'api.found': 'signed_in',
    'api.get_asset': ('office',),
    'api.get_device': 'signed_in',
    'api.get_loan': 'signed_in',
    'api.get_permission_request': 'signed_in',
    'api.get_stocktake': ('office',),
    'api.grant_standing_permission': ('approver',),
    'api.latest_verification': ('admin', 'approver', 'governor', 'office'),
    'api.list_areas': 'signed_in',
    'api.list_assets': ('office',),
    'api.list_audit_events': ('admin', 'approver', 'governor', 'office'),
    'api.list_devices': 'signed_in',
    'api.list_loans': 'signed_in',
    'api.list_permission_requests': 'signed_in',
    'api.list_push_subscriptions': 'signed_in',
    'api.list_standing_permissions': 'signed_in',
    'api.me': 'signed_in',
    'api.me_export': 'signed_in',
    'api.now_board': ('approver', 'office'),
    'api.openapi_json': 'public',
    'api.push_action': 'public',
    'api.push_key': 'public',
    'api.record_scan': ('office',),
    'api.report_lost': 'signed_in',
    'api.retire_device': 'signed_in',
    'api.review_permission_request': ('approver',),
    'api.rotate_area_poster': ('admin',),
    'api.start_stocktake': ('office',),
    'api.update_area': ('admin',),
    'api.update_asset': ('office',),
    'api.update_device': 'signed_in',
    'api.verify_audit_events': ('admin', 'approver', 'governor', 'office'),
    'api.withdraw_permission_request': 'signed_in',
    'audit_log.digest': ('admin', 'approver', 'governor', 'office'),
    'audit_log.export': ('admin', 'approver', 'governor', 'office'),
    'audit_log.index': ('admin', 'approver', 'governor', 'office'),
    'audit_log.verify': ('admin', 'approver', 'governor', 'office'),
    'auth.account': 'signed_in',
    'auth.passkey_list': 'signed_in',
    'auth.passkey_register': 'signed_in',
    'auth.passkey_registration_options': 'signed_in',
    'auth.passkey_remove': 'signed_in',
    'auth.passkey_sign_in': 'public',
    'auth.passkey_sign_in_options': 'public',
    'auth.revoke_token': 'signed_in',
    'auth.set_password': 'public',
    'auth.sign_in': 'public',
    'auth.sign_out': 'signed_in',
    'auth.tokens': 'signed_in',
    'devices.add': 'signed_in',
    'devices.edit': 'signed_in',
    'devices.found': 'signed_in',
    'devices.lost': 'signed_in',
    'devices.mine': 'signed_in',
    'devices.office_show': ('office',),
    'devices.register': ('office',),
    'devices.report_lost': 'signed_in',
    'devices.retire': 'signed_in',
    'devices.show': 'signed_in',
    'equipment.add': ('office',),
    'equipment.check_in': ('office',),
    'equipment.check_out': ('office',),
    'equipment.close_stocktake': ('office',),
    'equipment.edit': ('office',),
    'equipment.export_assets': ('office',),
    'equipment.export_loans': ('office',),
    'equipment.find': ('office',),
    'equipment.import_assets': ('office',),
    'equipment.import_template': ('office',),
    'equipment.index': ('office',),
    'equipment.labels': ('office',),
    'equipment.loan_list': ('office',),
    'equipment.my_loans': 'signed_in',
    'equipment.overdue': ('office',),
    'equipment.retire': ('office',),
    'equipment.scan': ('office',),
    'equipment.scanned': 'signed_in',
    'equipment.show': ('office',),
    'equipment.start_stocktake': ('office',),
    'equipment.stocktake': ('office',),
    'equipment.stocktake_csv': ('office',),
    'equipment.stocktake_list': ('office',),
    'equipment.stocktake_scan': ('office',),
    'mail.forgot_password': 'public',
    'mail.preferences': 'signed_in',
    'main.healthz': 'public',
    'main.home': 'signed_in',
    'main.manifest': 'public',
    'main.mark_notices_read': 'signed_in',
    'main.my_data': 'signed_in',
    'main.my_data_download': 'signed_in',
    'main.notices': 'signed_in',
    'main.more': 'signed_in',
    'permissions.scan': 'signed_in',
    'main.offline': 'public',
    'main.privacy': 'public',
    'main.school_logo': 'public',
    'main.service_worker': 'public',
    'permissions.approval': ('approver',),
    'permissions.area_edit': ('admin',),
    'permissions.area_new': ('admin',),
    'permissions.area_poster': ('admin',),
    'permissions.area_posters': ('admin',),
    'permissions.area_rotate': ('admin',),
    'permissions.areas': ('admin',),
    'permissions.ask': 'signed_in',
    'permissions.ask_submit': 'signed_in',
    'permissions.cover': ('admin', 'approver'),
    'permissions.cover_away': ('approver',),
    'permissions.cover_save': ('admin', 'approver'),
    'permissions.decision': ('approver',),
    'permissions.inbox': ('approver',),
    'permissions.my_requests': 'signed_in',
    'permissions.now': ('approver', 'office'),
    'permissions.request_end': 'signed_in',
    'permissions.request_status': 'signed_in',
    'permissions.request_withdraw': 'signed_in',
    'permissions.review': ('approver',),
    'permissions.standing': ('approver',),
    'permissions.standing_end': ('approver',),
    'push.remove': 'signed_in',
    'push.send_test': 'signed_in',
    'push.settings': 'signed_in',
    'admin.subject_access_export': ('admin',),
    'devices.office_reveal': ('office',),
    'policy.accept': 'signed_in',
    'policy.acceptances': ('admin', 'approver', 'office'),
    'policy.concern': 'signed_in',
    'policy.coverage': ('admin', 'approver', 'office'),
    'policy.declare_no_device': 'signed_in',
    'policy.document': 'signed_in',
    'policy.publish': ('admin',),
    'policy.read': 'signed_in',
    'policy.remind_to_register': ('admin', 'approver', 'office'),
    'policy.remind': ('admin', 'approver', 'office'),
    'policy.withdraw_no_device': 'signed_in',
    'sso.callback': 'public',
    'sso.rules': ('admin',),
    'sso.start': 'public',
    'provisioning.revoke_scim_token': ('admin',),
    'provisioning.scim_tokens': ('admin',),
    'provisioning.staff_import_apply': ('admin',),
    'provisioning.staff_import_page': ('admin',),
    'provisioning.staff_import_template': ('admin',),
    # SCIM answers only a provisioning token (Authorization: Bearer), never a signed-in person: 401 to every role.
    'scim.change_group': (),
    'scim.create_group': (),
    'scim.create_user': (),
    'scim.delete_user': (),
    'scim.get_group': (),
    'scim.get_user': (),
    'scim.list_groups': (),
    'scim.list_users': (),
    'scim.patch_group': (),
    'scim.patch_user': (),
    'scim.replace_user': (),
    'scim.resource_type': (),
    'scim.resource_types': (),
    'scim.schema': (),
    'scim.schemas': (),
    'scim.search_root': (),
    'scim.search_users': (),
    'scim.service_provider': (),
    'scim.unknown_endpoint': (),
}
ROLES = ["anonymous", "staff", "approver", "office", "admin", "governor"]


def _sample_path(rule) -> str:
    path = rule.rule
    for argument in rule.arguments:
        path = re.sub(rf"<(?:int:)?{argument}>", "999999" if f"<int:{argument}>" in rule.rule else "zz-no-such", path)
    return path


def _client_for(app, role: str):
    client = app.test_client()
    if role != "anonymous":
        extra = () if role == "staff" else (Role(role),)
        sign_in(client, make_user(*extra, name=f"Matrix {role}"))
    token = CSRF_META.search(client.get("/privacy").get_data(as_text=True)).group(1)
    return client, token


def test_every_route_has_an_entry(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint != "static"}
    assert endpoints - set(ACCESS) == set(), "routes without an access entry"
    assert set(ACCESS) - endpoints == set(), "entries for routes that no longer exist"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_the_expected_answer(app, role):
    client, token = _client_for(app, role)
    wrong = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static" or rule.endpoint == "auth.sign_out":
            continue
        expected = ACCESS[rule.endpoint]
        path = _sample_path(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            headers = {"X-CSRFToken": token} if method != "GET" else {}
            response = client.open(path, method=method, headers=headers, json={} if path.startswith("/api/") and method != "GET" else None)
            status = response.status_code
            response.close()
            to_sign_in = status == 302 and "/sign-in" in response.headers.get("Location", "")
            if expected == "public":
                allowed = True
            elif role == "anonymous":
                allowed = False
            elif expected == "signed_in":
                allowed = True
            else:
                allowed = role in expected
            if allowed and (status in (401, 403) or (to_sign_in and expected != "public" and role != "anonymous")):
                wrong.append(f"{method} {path}: {role} should be let in, got {status}")
            if not allowed:
                refused = status in (401, 403, 404) or to_sign_in
                if not refused:
                    wrong.append(f"{method} {path}: {role} should be refused, got {status}")
    assert wrong == []
