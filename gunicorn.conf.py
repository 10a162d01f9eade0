"""Production settings for `gunicorn -c gunicorn.conf.py wsgi:app`.

Workers are processes with a few threads each; SQLite (WAL, BEGIN IMMEDIATE) and PostgreSQL both
handle that. The background work (the push and mail senders, the scheduler of timed jobs) runs in its own
processes in production, one systemd unit each (deploy/systemd/lanyard-push.service and
lanyard-scheduler.service), so the web workers never start them.
"""

import multiprocessing
import os

bind = os.environ.get("LANYARD_BIND", "127.0.0.1:8000")
_sqlite = (os.environ.get("LANYARD_DATABASE_URL") or os.environ.get("DATABASE_URL") or "sqlite").startswith("sqlite")
# SQLite has one write lock: with many threads each waiting in SQLite's busy loop, a write can wait past
# busy_timeout and "database is locked" would reach a user. One thread per process, one process per
# core, lets requests queue fairly in gunicorn's backlog instead. PostgreSQL takes more at once.
workers = int(os.environ.get("LANYARD_WORKERS", str(multiprocessing.cpu_count() if _sqlite else min(4, multiprocessing.cpu_count() * 2))))
threads = int(os.environ.get("LANYARD_THREADS", "1" if _sqlite else "4"))
worker_class = "gthread"
timeout = 30
graceful_timeout = 20
keepalive = 5
max_requests = 2000
max_requests_jitter = 200
preload_app = False
# Path only (%(U)s), never the query string: a search by IMEI must not land in a log file. The last
# field is the request id Lanyard answers with (X-Request-ID), the same one its own log lines carry.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s" %({x-request-id}o)s'
accesslog = "-"
errorlog = "-"
raw_env = [
    f"LANYARD_PROXY_HOPS={os.environ.get('LANYARD_PROXY_HOPS', '1')}",
    # Timed jobs and the daily audit digest come from their own process (`flask scheduler`);
    # LANYARD_SCHEDULER=1 runs them in the workers instead (safe with many workers: each tick takes a
    # database lock, the jobs are idempotent, and one lock file lets one process publish the digest).
    f"LANYARD_SCHEDULER={os.environ.get('LANYARD_SCHEDULER', '0')}",
]
