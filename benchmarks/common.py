"""Shared benchmark tools: a real gunicorn on a throwaway database, an async load generator, figures.

Figures are measured, never written in. Each benchmark returns `Figure`s; `benchmarks/run.py` prints
them against DESIGN.md section 9's budgets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    budget: float | None = None
    note: str = ""
    lower_is_better: bool = True

    @property
    def verdict(self) -> str:
        if self.budget is None:
            return "measured"
        ok = self.value <= self.budget if self.lower_is_better else self.value >= self.budget
        return "within" if ok else "OVER"


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def figures(self, name: str, budget_p95: float | None = 25.0) -> list[Figure]:
        return [
            Figure(f"{name} p50", self.percentile(50), "ms"),
            Figure(f"{name} p95", self.percentile(95), "ms", budget_p95),
            Figure(f"{name} p99", self.percentile(99), "ms"),
            Figure(f"{name} throughput", self.throughput, "req/s", lower_is_better=False),
            Figure(f"{name} errors", self.errors, "count", 0),
        ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(database_url: str, instance: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANYARD_")}
    env.update(
        {
            "LANYARD_DATABASE_URL": database_url,
            "LANYARD_ENV": "development",
            "LANYARD_JSON_LOGS": "0",
            "SECRET_KEY": "benchmark-" + os.urandom(8).hex(),
            "FLASK_APP": "wsgi.py",
            "LANYARD_INSTANCE_PATH": str(instance),
            "LANYARD_SCHEDULER": "0",
            "LANYARD_PUSH_WORKER": "0",
        }
    )
    env.update(extra)
    return env


def flask(env: dict[str, str], *args: str) -> str:
    return subprocess.run([PYTHON, "-m", "flask", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout


@contextlib.contextmanager
def scratch_database(backend: str = "sqlite") -> Iterator[tuple[str, Path]]:
    """A migrated, empty database for one benchmark run, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="lanyard-bench-") as folder:
        instance = Path(folder)
        if backend == "sqlite":
            url = f"sqlite:///{instance / 'bench.db'}"
            yield url, instance
            return
        import psycopg

        name = f"lanyard_bench_{os.getpid()}_{int(time.time())}"
        admin = os.environ.get("LANYARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        try:
            yield admin.rsplit("/", 1)[0] + "/" + name, instance
        finally:
            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def gunicorn(env: dict[str, str]) -> Iterator[str]:
    """Serve the app with the production gunicorn settings on a free port; yield its base URL."""
    port = free_port()
    server_env = {**env, "LANYARD_BIND": f"127.0.0.1:{port}", "LANYARD_PROXY_HOPS": "0"}
    process = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--access-logfile", "/dev/null", "wsgi:app"],
        cwd=ROOT,
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if process.poll() is not None:
                raise RuntimeError("gunicorn stopped: " + (process.stderr.read() if process.stderr else ""))
            time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not start within 30 s")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


async def signed_in_session(base_url: str, email: str, password: str) -> tuple[aiohttp.ClientSession, str]:
    """A cookie session signed in through the real form; returns it with a CSRF token for its pages."""
    session = aiohttp.ClientSession(base_url=base_url, cookie_jar=aiohttp.CookieJar(unsafe=True))
    page = await (await session.get("/sign-in")).text()
    token = CSRF_META.search(page).group(1)
    response = await session.post("/sign-in", data={"email": email, "password": password, "csrf_token": token}, allow_redirects=False)
    if response.status != 302:
        raise RuntimeError(f"sign-in for {email} answered {response.status}")
    page = await (await session.get("/devices")).text()
    return session, CSRF_META.search(page).group(1)


async def run_load(
    clients: list[tuple[aiohttp.ClientSession, str]],
    make_request: Callable[[aiohttp.ClientSession, str, int], Awaitable[aiohttp.ClientResponse]],
    total: int,
    ok_statuses: tuple[int, ...] = (200, 201, 302),
) -> LoadResult:
    """Keep every client busy (len(clients) requests in flight) until `total` requests are done."""
    result = LoadResult()
    counter = iter(range(total))

    async def worker(client: tuple[aiohttp.ClientSession, str]) -> None:
        session, csrf = client
        for n in counter:
            started = time.perf_counter()
            try:
                response = await make_request(session, csrf, n)
                await response.read()
                status = response.status
            except aiohttp.ClientError:
                status = 0
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status not in ok_statuses:
                result.errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients))
    result.seconds = time.perf_counter() - started
    return result


async def run_paced(
    clients: list[tuple[aiohttp.ClientSession, str]],
    make_request: Callable[[aiohttp.ClientSession, str, int], Awaitable[aiohttp.ClientResponse]],
    seconds: float,
    interval: float = 1.0,
    ok_statuses: tuple[int, ...] = (200, 201, 302),
) -> LoadResult:
    """50 people using the app at once: each client sends one request every `interval` seconds.

    The closed loop in `run_load` (every client always waiting on the server) measures capacity; this
    measures what a school's staff feel when they all tap at the same time of day.
    """
    result = LoadResult()
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds

    async def person(index: int, client: tuple[aiohttp.ClientSession, str]) -> None:
        session, csrf = client
        await asyncio.sleep(interval * index / len(clients))  # spread the first taps over one interval
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                response = await make_request(session, csrf, next(counter))
                await response.read()
                status = response.status
            except aiohttp.ClientError:
                status = 0
            elapsed = time.perf_counter() - started
            result.latencies_ms.append(elapsed * 1000)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status not in ok_statuses:
                result.errors += 1
            await asyncio.sleep(max(0.0, interval - elapsed))

    started = time.perf_counter()
    await asyncio.gather(*(person(i, client) for i, client in enumerate(clients)))
    result.seconds = time.perf_counter() - started
    return result


def print_table(figures: list[Figure]) -> None:
    width = max(len(f.name) for f in figures) + 2
    print(f"{'figure':{width}}{'value':>12}  {'unit':8}{'budget':>10}  verdict")
    for figure in figures:
        budget = "" if figure.budget is None else (f"<= {figure.budget:g}" if figure.lower_is_better else f">= {figure.budget:g}")
        value = f"{figure.value:,.1f}" if isinstance(figure.value, float) else f"{figure.value:,}"
        print(f"{figure.name:{width}}{value:>12}  {figure.unit:8}{budget:>10}  {figure.verdict}{'  ' + figure.note if figure.note else ''}")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def analyse(database_url: str) -> None:
    """Fresh planner statistics after bulk changes, as autovacuum gives a production PostgreSQL.

    This machine's PostgreSQL runs with autovacuum off, so without it every query on freshly loaded
    tables is planned blind. SQLite needs nothing (its planner uses the indexes as they are).
    """
    if not database_url.startswith("postgresql"):
        return
    import sqlalchemy as sa

    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


def measure_on_gunicorn(backend: str, seed: Callable[[dict], object], endpoints: Callable[[str, object], Awaitable[list[Figure]]]) -> list[Figure]:
    """Migrate a scratch database, seed it, serve it with gunicorn and run `endpoints(base_url, seeded)`."""
    with scratch_database(backend) as (url, instance):
        env = environment(url, instance)
        flask(env, "db", "upgrade")
        seeded = seed(env)
        analyse(url)
        with gunicorn(env) as base_url:
            figures = asyncio.run(endpoints(base_url, seeded))
    for figure in figures:
        figure.name = f"[{backend}] {figure.name}"
    return figures


def backend_cli(measure: Callable[[str, int], list[Figure]], description: str, default_requests: int) -> None:
    """The command line shared by the per-endpoint benchmarks: --backend and --requests."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--requests", type=int, default=default_requests)
    arguments = parser.parse_args()
    print_table(measure(arguments.backend, arguments.requests))
