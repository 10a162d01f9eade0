"""Demo: the school's Social Networking Policy published, two of the staff yet to accept it, one
"no personal phone" declaration, and whom to tell about a concern."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from app.clock import local_today
from app.demo import backdated, demo_seeder
from app.services import policy
from app.services.settings import set_setting

POLICY_TEXT = Path(__file__).with_name("demo_policy.txt")
PUBLISHED_DAYS_AGO = 41.5
ACCEPTED_DAYS_AGO = (
    ("head", 41.4),
    ("admin", 41.3),
    ("deputy", 40),
    ("office", 38),
    ("governor", 30),
    ("bclarke", 16),
    ("eevans", 2),
)


@demo_seeder(60)
def seed_policy(session, people) -> None:
    admin = people["admin"]
    review_date = local_today() + timedelta(days=45)
    # Published six weeks ago and accepted over the weeks since, so the reports have a trend to show.
    with backdated(PUBLISHED_DAYS_AGO):
        version = policy.publish_policy(
            session,
            admin,
            policy.PolicyDraft(
                label="February 2018",
                title="Social Networking Policy",
                body=POLICY_TEXT.read_text(encoding="utf-8"),
                pdf=b"",
                review_date=review_date,
            ),
        )
    # Miss C Davies has not read it yet: the coverage view and the reminders have someone to show.
    for short, days_ago in ACCEPTED_DAYS_AGO:
        with backdated(days_ago):
            policy.accept_policy(session, people[short], version.id)
    policy.declare_no_device(session, people["deputy"])
    for key, value in (
        ("safeguarding.head_name", "Mrs A Adeyemi"),
        ("safeguarding.head_contact", "Head's office, extension 201"),
        ("safeguarding.dsl_name", "Mr D Okafor"),
        ("safeguarding.dsl_contact", "Deputy's office, extension 202"),
    ):
        set_setting(session, admin, key, value)
