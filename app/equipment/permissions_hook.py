"""Where equipment meets classroom permission: school assets on loan to the requester are offered on the
request form, and each request that named an asset shows in that asset's history."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import PermissionRequest, SchoolAsset, User
from app.services.assets import HistoryEntry, register_history_source
from app.services.loans import assets_on_loan_to
from app.services.permissions import DeviceOption, register_device_option_provider


@register_device_option_provider
def school_assets_on_loan(
    session, user: User
) -> list[DeviceOption]:  # session: Session once DeviceOptionProvider says so (h12 split)
    """The school equipment lent to this person now (allowed even where personal devices are not)."""
    return [
        DeviceOption(
            key=f"asset-{asset.id}",
            label=f"{asset.name} ({asset.tag})",
            hint="school equipment on loan to you",
            asset_id=asset.id,
            school_device=True,
        )
        for asset in assets_on_loan_to(session, user)
    ]


@register_history_source
def permission_requests_for(session: Session, asset: SchoolAsset) -> list[HistoryEntry]:
    """Requests that named this asset, with where it went and what was decided."""
    requests = session.scalars(
        sa.select(PermissionRequest)
        .where(PermissionRequest.asset_id == asset.id)
        .order_by(PermissionRequest.created_at.desc())
        .limit(200)
    )
    entries = []
    for request in requests:
        text = f"{request.requester.display_name} asked to take it into {request.area.name}: {request.status_label.lower()}"
        if request.decided_by is not None:
            text += f" by {request.decided_by.display_name}"
        entries.append(HistoryEntry(request.created_at, "permission", text, details={"request_id": request.id}))
    return entries
