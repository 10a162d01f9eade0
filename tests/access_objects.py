"""Other people's objects for the access matrix: one of each kind a route names by id, none of them the visitor's.

Everything belongs to "Olive Owner" (a member of staff) or was made by separate set-up people (an admin, a
head, an office manager), never by the people the matrix signs in as. So a refusal can only come from the
route's role or ownership check, not from a missing row. Built through the real services and committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from app.clock import local_today
from app.database import write_intent
from app.extensions import db
from app.models import AreaRule, Passkey, Role
from app.services import (
    accounts,
    api_tokens,
    areas,
    assets,
    bookings,
    devices,
    loans,
    permissions,
    policy,
    provisioning,
    push,
    school_logo,
    stocktakes,
)
from tests.factories import make_imei
from tests.hostile_data import push_keys

OWNER_NAME = "Olive Owner"

# Where an argument's name alone does not say which object it names, the endpoint says (its key in ``values``).
ARGUMENT_FOR_ENDPOINT: dict[str, dict[str, str]] = {
    "provisioning.revoke_scim_token": {"token_id": "scim_token_id"},
    "auth.set_password": {"token": "password_token"},
    "bookings.remove_member": {"asset_id": "kit_member_id"},
    "booking_week.asset": {"asset_id": "bookable_asset_id"},
}


# Published so that policy.document names a real document; every visitor accepts it (see accept_current_policy).
TINY_PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def accept_current_policy(user) -> None:
    """The matrix's visitors have read the policy: the policy gate is not the refusal under test."""
    current = policy.current_policy_id(db.session)
    if current is not None:
        with write_intent():
            policy.accept_policy(db.session, user, current)
            db.session.commit()


@dataclass(frozen=True)
class OtherPeoplesObjects:
    """Path arguments by name, each naming an object that exists and is not the visitor's."""

    owner_id: int
    owner_imei: str
    values: dict[str, object]

    def path_for(self, rule) -> str:
        """The rule's path with every argument filled in with an existing object's id (KeyError when none)."""
        names = ARGUMENT_FOR_ENDPOINT.get(rule.endpoint, {})
        path = rule.rule
        for argument in rule.arguments:
            value = self.values[names.get(argument, argument)]
            for form in (f"<int:{argument}>", f"<{argument}>"):
                path = path.replace(form, str(value))
        assert "<" not in path, path
        return path


def build_other_peoples_objects() -> OtherPeoplesObjects:
    """Make one of everything an id route can name, owned by Olive Owner or made by set-up people; commit."""
    session = db.session
    session.rollback()
    with write_intent():
        make = lambda key, roles, name=None: accounts.create_user(  # noqa: E731
            session, None, email=f"{key}@objects.test", display_name=name or f"Set-up {key}", roles=roles, password=None
        )
        admin, head, office = make("admin", {Role.ADMIN}), make("head", {Role.APPROVER}), make("office", {Role.OFFICE})
        owner = make("owner", set(), OWNER_NAME)
        target = make("target", set())  # a staff account for the admin pages (never the owner: deactivating ends her sessions)
        invitee = make("invitee", set())  # holds the set-password link (the admin pages' new links revoke target's)
        phone = devices.register_device(
            session, owner, devices.DeviceDetails(kind="smartphone", make="Apple", model="iPhone 13", imei1=make_imei())
        )
        area = areas.create_area(session, admin, name="Science lab")
        school_only = areas.create_area(session, admin, name="Exam hall", rule=AreaRule.SCHOOL_DEVICES_ONLY.value)
        pending = permissions.request_permission(
            session, owner, area, device_key=f"personal-{phone.id}", reason="urgent_call", duration="one_hour"
        )
        today = local_today()
        standing = permissions.grant_standing_permission(
            session,
            head,
            person_id=owner.id,
            area_ids=[school_only.id],
            starts_on=today,
            ends_on=today + timedelta(days=30),
            reason="Medical",
        )
        camera = assets.create_asset(session, office, assets.AssetDetails(tag="CAM-0001", name="Camera 1", kind="camera"))
        laptop = assets.create_asset(session, office, assets.AssetDetails(tag="LAP-0001", name="Laptop 1", kind="laptop"))
        loan = loans.check_out(session, office, laptop.id, borrower_id=owner.id, due_on=today + timedelta(days=7))
        take = stocktakes.start_stocktake(session, office, "")
        visualiser = assets.create_asset(session, office, assets.AssetDetails(tag="VIS-0001", name="Visualiser", kind="other"))
        bookings.set_bookable(session, office, asset_id=visualiser.id, bookable_by="everyone")
        booking = bookings.book(session, owner, asset_id=visualiser.id, day=today + timedelta(days=1), periods=["P1"])
        kit = bookings.create_kit(session, office, name="iPad trolley", tag="KIT-0001", bookable_by="everyone")
        tablet = assets.create_asset(session, office, assets.AssetDetails(tag="TAB-0001", name="iPad 1", kind="tablet"))
        bookings.add_kit_member(session, office, kit.id, tablet.tag)
        p256dh, auth = push_keys()
        subscription, _new = push.subscribe(
            session,
            owner,
            endpoint="https://fcm.googleapis.com/fcm/send/owner",
            p256dh=p256dh,
            auth=auth,
            user_agent="Phone",
            services=push.PushServices.public(),
        )
        token, _secret = api_tokens.create_token(session, owner, "Owner's script")
        # A passkey needs a real authenticator to register; the row is written as register_passkey writes it.
        passkey = Passkey(user_id=owner.id, credential_id="owner-credential", public_key=b"k", name="Owner's phone", sign_count=0)
        session.add(passkey)
        scim_token, _scim_secret = provisioning.create_scim_token(session, admin, "Entra")
        invite = accounts.issue_password_token(session, admin, invitee)
        logo = school_logo.save_logo(session, admin, (Path(__file__).parent / "images" / "logo-3x2.jpg").read_bytes())
        rules = policy.publish_policy(
            session,
            admin,
            policy.PolicyDraft(
                label="v1",
                title="Staff conduct",
                body="Phones stay in the staffroom.",
                pdf=TINY_PDF,
                review_date=today + timedelta(days=365),
            ),
        )
        policy.accept_policy(session, owner, rules.id)
        session.flush()
        values = {
            "policy_id": rules.id,
            "device_id": phone.id,
            "request_id": pending.id,
            "standing_id": standing.id,
            "area_id": area.id,
            "token": area.poster_token,
            "asset_id": camera.id,
            "tag": camera.tag,
            "loan_id": loan.id,
            "booking_id": booking.id,
            "kit_id": kit.id,
            "kit_member_id": tablet.id,
            "bookable_asset_id": visualiser.id,
            "stocktake_id": take.id,
            "subscription_id": subscription.id,
            "token_id": token.id,
            "passkey_id": passkey.id,
            "scim_token_id": scim_token.id,
            "user_id": target.id,
            "group_id": "Approvers",
            "password_token": invite,
            "digest": logo.digest,
        }
        session.commit()
    return OtherPeoplesObjects(owner_id=owner.id, owner_imei=phone.imei1, values=values)
