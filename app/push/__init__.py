"""Web Push: the Notifications page, the push channel and the sender (DESIGN.md section 4)."""

from __future__ import annotations

import os

from flask import Flask


def init_push(app: Flask) -> None:
    """Plug the push channel into notify() and, when configured, run this process's sender thread.

    The sender thread starts with the first request a process serves rather than in the factory
    itself: `flask db upgrade` and other commands build the app too and must not start sending, and a
    gunicorn worker forked after a preloaded factory needs its own thread.
    """
    from app.push import permission_actions  # noqa: F401  (registers the permission_request handler)
    from app.services.notifications import register_channel
    from app.services.push import PushServices, queue_push_messages

    PushServices.from_config(app.config)  # a malformed LANYARD_PUSH_EXTRA_HOSTS stops the app here
    register_channel(queue_push_messages)
    if not app.config.get("PUSH_WORKER"):
        return
    started_in: dict[str, int] = {}

    def ensure_sender_running() -> None:
        if started_in.get("pid") != os.getpid():
            from app.push.worker import start_embedded_worker

            start_embedded_worker(app)
            started_in["pid"] = os.getpid()

    app.before_request(ensure_sender_running)
