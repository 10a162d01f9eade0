"""Every timed job, in one list: what runs, and how often it does work.

The scheduler (``app/scheduler.py``) ticks every ``LANYARD_SCHEDULER_SECONDS`` (30 by default), in the
web process's thread or in ``flask scheduler``. Each tick runs every timed job below, in this order, in
one write transaction; a job is ``job(session, now)``, idempotent, and decides for itself whether it is
due (``every`` says when it does work). Background jobs run after the tick, outside its transaction, and
settle their own. Register a new job here, not from a route or a service module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.scheduler import register_background_job, register_timed_job


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[..., Any]
    every: str
    background: bool = False


def all_jobs() -> list[Job]:
    """The jobs, in the order each tick runs them (imported here, so no module registers itself)."""
    from app.services import booking_loans, form_keys, loans, mail, permissions, policy, retention, sso, staff_terms
    from app.services.audit_digest import scheduled_digest

    return [
        Job("mail.approval_fallback", mail.send_approval_fallbacks, "every tick: requests waiting past the set minutes"),
        Job("staff.end_dates", staff_terms.end_accounts_due, "every tick: leavers whose last day has gone"),
        Job("retention", retention.scheduled_retention, "at most hourly per process"),
        Job("equipment.loan_reminders", loans.scheduled_loan_reminders, "once a day, from 08:00 school time"),
        Job(
            "bookings",
            booking_loans.run_booking_jobs,
            "every tick: uncollected bookings released, reminders before the slot and when not back, returns completed",
        ),
        Job("permissions", permissions.run_jobs, "every tick: expiry, escalation, unreviewed emergencies"),
        Job("policy.review_reminders", policy.review_reminders, "once per policy version, the set days before its review date"),
        Job("sso.purge_sign_in_states", sso.purge_sign_in_states, "every tick: sign-in states a day past their end"),
        Job("form_keys", form_keys.purge_expired, "every tick: form keys older than a day"),
        Job("audit.daily_digest", scheduled_digest, "once a day: the audit chain's head published", background=True),
    ]


def register_jobs() -> None:
    """Hand every job to the scheduler (idempotent: a name registered again replaces itself)."""
    for job in all_jobs():
        if job.background:
            register_background_job(job.name, job.run)
        else:
            register_timed_job(job.name, job.run)
