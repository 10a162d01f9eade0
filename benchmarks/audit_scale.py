"""A million audit events (DESIGN.md section 9, scale): filtered page p95, CSV export peak RSS, verify time.

Usage: python -m benchmarks.audit_scale [--backend sqlite|postgresql] [--events 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from benchmarks.common import ROOT, Figure, LoadResult, environment, flask, print_table, scratch_database

GENERATE = r"""
import json, random, sys
from datetime import UTC, datetime, timedelta
import sqlalchemy as sa
from app import create_app
from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, AuditLink, Role
from app.services import accounts, api_tokens
from app.services.audit import GENESIS_HASH, canonical_details, event_hash

total, people = int(sys.argv[1]), 5000
app = create_app()
with app.app_context():
    with write_intent():
        reader = accounts.create_user(db.session, None, email="reader@bench.test", display_name="Reader", roles={Role.OFFICE}, password="benchmark password")
        _token, secret = api_tokens.create_token(db.session, reader, "bench")
        db.session.commit()
    start_seq = db.session.scalar(sa.select(sa.func.max(AuditEvent.seq))) + 1
    prev = db.session.scalar(sa.select(AuditEvent.hash).where(AuditEvent.seq == start_seq - 1))
    rng = random.Random(7)
    actions = ["device.registered", "permission.requested", "permission.approved", "loan.checked_out", "loan.checked_in", "auth.signed_in"]
    when = datetime(2025, 1, 1, tzinfo=UTC)
    step = timedelta(seconds=60)
    engine = db.engine
    batch_events, batch_links = [], []
    for n in range(total):
        seq = start_seq + n
        actor = rng.randrange(1, people)
        area = rng.randrange(1, 60)
        details = canonical_details({"area_id": area, "n": n % 97})
        fields = dict(seq=seq, occurred_at=when + step * n, actor_id=None, action=rng.choice(actions), subject_type="permission_request",
                      subject_id=str(n), details=details, ip="10.0.0.1", user_agent="bench")
        digest = event_hash(prev, **fields)
        batch_events.append({**fields, "prev_hash": prev, "hash": digest})
        batch_links += [{"seq": seq, "kind": "user", "ref": str(actor)}, {"seq": seq, "kind": "area", "ref": str(area)}]
        prev = digest
        if len(batch_events) == 20000 or n == total - 1:
            with engine.begin() as connection:
                connection.execute(sa.insert(AuditEvent.__table__), batch_events)
                connection.execute(sa.insert(AuditLink.__table__), batch_links)
            batch_events, batch_links = [], []
    print(json.dumps({"token": secret}))
"""

# Peak RSS from /proc/self/status (VmHWM, this process's own high-water mark, in kB): getrusage's
# ru_maxrss would carry over the parent's peak through exec on Linux, and the parent has seeded tables.
EXPORT = r"""
import re, sys
from app import create_app
from app.extensions import db
from app.services import audit_log
app = create_app()
with app.app_context():
    size = 0
    for line in audit_log.export_rows(db.session, audit_log.AuditFilters()):
        size += len(line)
    with open("/proc/self/status") as status:
        peak_kb = int(re.search(r"VmHWM:\s+(\d+) kB", status.read()).group(1))
    print(size, peak_kb)
"""

VERIFY = r"""
import time
from app import create_app
from app.extensions import db
from app.services.audit import verify_chain
app = create_app()
with app.app_context():
    started = time.perf_counter()
    report = verify_chain(db.session)
    print(time.perf_counter() - started, report.verified_count, report.ok)
"""

PAGE = r"""
import json, random, sys, time
from app import create_app
app = create_app()
client = app.test_client()
token = sys.argv[1]
rng = random.Random(3)
queries = []
for _ in range(200):
    choice = rng.randrange(4)
    if choice == 0:
        queries.append(f"?area={rng.randrange(1, 60)}")
    elif choice == 1:
        queries.append(f"?action=permission.&area={rng.randrange(1, 60)}")
    elif choice == 2:
        queries.append(f"?since=2025-03-01&until=2025-03-31&action=loan.")
    else:
        queries.append("")
timings = []
headers = {"Authorization": f"Bearer {token}"}
for query in queries:
    started = time.perf_counter()
    response = client.get("/api/v1/audit-events" + query, headers=headers)
    page = response.get_json()
    if page["next_before"]:
        client.get(f"/api/v1/audit-events{query}{'&' if query else '?'}before={page['next_before']}", headers=headers)
    timings.append((time.perf_counter() - started) * 1000 / (2 if page["next_before"] else 1))
    assert response.status_code == 200, response.status_code
print(json.dumps(timings))
"""


def _python(env: dict, script: str, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", script, *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def measure(backend: str = "sqlite", events: int = 1_000_000) -> list[Figure]:
    with scratch_database(backend) as (url, instance):
        env = environment(url, instance, PYTHONPATH=str(ROOT))
        flask(env, "db", "upgrade")
        started = time.perf_counter()
        token = json.loads(_python(env, GENERATE, str(events)).splitlines()[-1])["token"]
        generated = time.perf_counter() - started
        timings = json.loads(_python(env, PAGE, token))
        page = LoadResult(latencies_ms=timings, seconds=sum(timings) / 1000)
        size, peak_kb = (int(v) for v in _python(env, EXPORT).split())
        verify_seconds, verified, ok = _python(env, VERIFY).split()
    prefix = f"[{backend}, {events:,} events]"
    return [
        Figure(f"{prefix} generate", generated, "s", note="setup, not a budget"),
        Figure(f"{prefix} filtered audit page p50", page.percentile(50), "ms"),
        Figure(f"{prefix} filtered audit page p95", page.percentile(95), "ms", 50),
        Figure(f"{prefix} CSV export peak RSS", peak_kb / 1024, "MB", 150, note=f"{size / 1e6:.0f} MB of CSV streamed"),
        Figure(f"{prefix} verify", float(verify_seconds), "s", 15, note=f"{verified} events, ok={ok}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--events", type=int, default=1_000_000)
    arguments = parser.parse_args()
    print_table(measure(arguments.backend, arguments.events))


if __name__ == "__main__":
    main()
