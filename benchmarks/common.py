"""Shared benchmark tools: a real gunicorn on a throwaway database, an async load generator, figures.

Figures are measured, never written in. Each benchmark returns `Figure`s; `benchmarks/run.py` prints
them against DESIGN.md section 9's budgets.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
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
        index = min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))  # nearest rank
        return ordered[index]

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def figures(self, name: str, budget_p95: float | None = None) -> list[Figure]:
        return [
            Figure(f"{name} p50", self.percentile(50), "ms"),
            Figure(f"{name} p95", self.percentile(95), "ms", budget_p95),
            Figure(f"{name} p99", self.percentile(99), "ms"),
            Figure(f"{name} throughput", self.throughput, "req/s", lower_is_better=False),
            Figure(f"{name} errors", self.errors, "count", 0),
        ]


def combined(results: list[LoadResult]) -> LoadResult:
    """Several runs of one request as one result: every latency, error and status, and their summed time."""
    total = LoadResult()
    for result in results:
        total.latencies_ms += result.latencies_ms
        total.errors += result.errors
        total.seconds += result.seconds
        for status, count in result.statuses.items():
            total.statuses[status] = total.statuses.get(status, 0) + count
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(database_url: str, instance: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANYARD_")}
    env.update(
        {
            "LANYARD_DATABASE_URL": database_url,
            "LANYARD_ENV": "production",  # secure cookies, HSTS, JSON logs: as deployed
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
def gunicorn(env: dict[str, str], app: str = "wsgi:app") -> Iterator[str]:
    """Serve the app with the production gunicorn settings on a free port; yield its base URL.

    `app` may be the floor instead ("benchmarks.floor:wsgi_app()", with FLOOR_DATABASE_URL in `env`).
    """
    port = free_port()
    server_env = {**env, "LANYARD_BIND": f"127.0.0.1:{port}", "LANYARD_PROXY_HOPS": "1"}  # behind one proxy, as deployed
    # The server's log goes to a file: a pipe nobody reads fills up and stops gunicorn mid-run.
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed in the finally below)
    process = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--access-logfile", "/dev/null", app],
        cwd=ROOT,
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError("gunicorn stopped: " + log.read()[-4000:])
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
        log.close()


# What the school's reverse proxy adds to every request (gunicorn runs with LANYARD_PROXY_HOPS=1).
PROXY_HEADERS = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
TIMEOUT_SECONDS = 5.0
SETUP_TIMEOUT = aiohttp.ClientTimeout(total=60)  # signing in while the workers start is not measured


def client_session(base_url: str) -> aiohttp.ClientSession:
    """A client as a phone behind the school's proxy: HTTPS as far as the app knows, Secure cookies kept."""
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[base_url])
    return aiohttp.ClientSession(
        base_url=base_url, cookie_jar=jar, headers=PROXY_HEADERS, timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
    )


def answered_well(response: aiohttp.ClientResponse, body: bytes, ok_statuses: tuple[int, ...]) -> bool:
    """The status is one expected, and the session was not lost on the way (no hop to the sign-in page)."""
    if response.status not in ok_statuses:
        return False
    if response.history or "/sign-in" in response.url.path:
        return False
    return not (300 <= response.status < 400 and "/sign-in" in response.headers.get("Location", ""))


async def signed_in_session(base_url: str, email: str, password: str) -> tuple[aiohttp.ClientSession, str]:
    """A cookie session signed in through the real form; returns it with a CSRF token for its pages."""
    session = client_session(base_url)
    page = await (await session.get("/sign-in", timeout=SETUP_TIMEOUT)).text()
    token = CSRF_META.search(page).group(1)
    response = await session.post(
        "/sign-in", data={"email": email, "password": password, "csrf_token": token}, allow_redirects=False, timeout=SETUP_TIMEOUT
    )
    if response.status != 302:
        raise RuntimeError(f"sign-in for {email} answered {response.status}")
    page = await (await session.get("/devices", timeout=SETUP_TIMEOUT)).text()
    return session, CSRF_META.search(page).group(1)


async def run_load(
    clients: list[tuple[aiohttp.ClientSession, str]],
    make_request: Callable[[aiohttp.ClientSession, str, int], Awaitable[aiohttp.ClientResponse]],
    total: int,
    ok_statuses: tuple[int, ...] = (200, 201, 302),
) -> LoadResult:
    """Capacity (a closed loop): keep every client busy until `total` requests are done.

    Under overload a closed loop silently offers less, so its latencies carry no budget: see run_open_loop.
    """
    result = LoadResult()
    counter = iter(range(total))

    async def worker(client: tuple[aiohttp.ClientSession, str]) -> None:
        session, csrf = client
        for n in counter:
            started = time.perf_counter()
            ok, status = await _send(make_request, session, csrf, n, ok_statuses)
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if not ok:
                result.errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients))
    result.seconds = time.perf_counter() - started
    return result


async def _send(make_request, session, csrf: str, n: int, ok_statuses: tuple[int, ...]) -> tuple[bool, int]:
    try:
        response = await make_request(session, csrf, n)
        body = await response.read()
    except (aiohttp.ClientError, TimeoutError):
        return False, 0  # refused, reset or timed out: an error, never a fast success
    return answered_well(response, body, ok_statuses), response.status


async def run_open_loop(
    clients: list[tuple[aiohttp.ClientSession, str]],
    make_request: Callable[[aiohttp.ClientSession, str, int], Awaitable[aiohttp.ClientResponse]],
    rate: float,
    seconds: float,
    ok_statuses: tuple[int, ...] = (200, 201, 302, 303),
    warm_up_seconds: float = 2.0,
) -> LoadResult:
    """An open loop: request n is sent at start + n / rate whatever the server does, round-robin over the
    clients, and its latency runs from that scheduled time (so queueing in the generator or the server
    counts). A timeout, a refused connection, an unexpected status or a lost session is an error.
    The first `warm_up_seconds` run on the same schedule and are not recorded.
    """
    result = LoadResult()
    loop = asyncio.get_running_loop()
    warm = int(rate * warm_up_seconds)
    total = warm + int(rate * seconds)
    start = loop.time() + 0.05
    tasks = []

    async def one(n: int, scheduled: float) -> None:
        session, csrf = clients[n % len(clients)]
        ok, status = await _send(make_request, session, csrf, n, ok_statuses)
        if n < warm:
            return
        result.latencies_ms.append((loop.time() - scheduled) * 1000)
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if not ok:
            result.errors += 1

    for n in range(total):
        scheduled = start + n / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, scheduled)))
    await asyncio.gather(*tasks)
    result.seconds = seconds
    return result


def print_table(figures: list[Figure]) -> None:
    width = max(len(f.name) for f in figures) + 2
    print(f"{'figure':{width}}{'value':>12}  {'unit':8}{'budget':>10}  verdict")
    for figure in figures:
        budget = "" if figure.budget is None else (f"<= {figure.budget:g}" if figure.lower_is_better else f">= {figure.budget:g}")
        value = f"{figure.value:,.1f}" if isinstance(figure.value, float) else f"{figure.value:,}"
        print(
            f"{figure.name:{width}}{value:>12}  {figure.unit:8}{budget:>10}  {figure.verdict}{'  ' + figure.note if figure.note else ''}"
        )


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


def measure_on_gunicorn(
    backend: str, seed: Callable[[dict], object], endpoints: Callable[[str, object], Awaitable[list[Figure]]]
) -> list[Figure]:
    """Migrate a scratch database, seed it, serve it with gunicorn and run `endpoints(base_url, seeded)`.

    The floor app (benchmarks/floor) is served beside it on the same database with the same gunicorn
    settings; `floor_url()` gives its address to endpoints that print ratios to it.
    """
    with scratch_database(backend) as (url, instance):
        env = environment(url, instance)
        flask(env, "db", "upgrade")
        seeded = seed(env)
        from benchmarks.floor import create_floor_app, seed_floor

        floor_sid = seed_floor(create_floor_app(url))
        analyse(url)
        floor_env = {**env, "FLOOR_DATABASE_URL": url}
        with gunicorn(env) as base_url, gunicorn(floor_env, "benchmarks.floor:wsgi_app()") as floor_base:
            _FLOOR[:] = [floor_base, floor_sid]
            try:
                figures = asyncio.run(endpoints(base_url, seeded))
            finally:
                _FLOOR.clear()
    for figure in figures:
        figure.name = f"[{backend}] {figure.name}"
    return figures


_FLOOR: list[str] = []  # the floor's base URL and session id while measure_on_gunicorn runs


async def floor_open_loop(rate: float, seconds: float, clients: int = 50) -> LoadResult:
    """The floor app under the same open loop (run it between Lanyard's runs, interleaved)."""
    base_url, sid = _FLOOR
    sessions = []
    for _ in range(clients):
        session = client_session(base_url)
        await (await session.get(f"/floor/sign-in/{sid}")).read()
        sessions.append((session, ""))
    try:
        return await run_open_loop(sessions, lambda s, _csrf, _n: s.get("/floor"), rate=rate, seconds=seconds, ok_statuses=(200,))
    finally:
        for session, _ in sessions:
            await session.close()


def with_floor(figures: list[Figure], floor: LoadResult) -> list[Figure]:
    """Each latency figure's note carries its ratio to the floor's same percentile."""
    for figure in figures:
        for p in (50, 95, 99):
            if figure.name.endswith(f" p{p}"):
                floor_ms = floor.percentile(p)
                figure.note = (
                    figure.note + "; " if figure.note else ""
                ) + f"floor {floor_ms:.1f} ms, {figure.value / floor_ms:.1f}x"
    return figures


def backend_cli(measure: Callable[..., list[Figure]], description: str, default_requests: int, *, profile: bool = False) -> None:
    """The command line shared by the per-endpoint benchmarks: --backend and --requests (and --profile,
    for those measured like cpu_bench: the cases whose name holds the text run their last round under cProfile)."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--requests", type=int, default=default_requests)
    if profile:
        parser.add_argument("--profile", default="", help="profile the cases whose name holds this text")
    arguments = parser.parse_args()
    extra = {"profile": arguments.profile} if profile else {}
    print_table(measure(arguments.backend, arguments.requests, **extra))
