"""`make test`'s front door: provide what the suite needs, then run pytest with it.

    python tools/test_prereqs.py [PYTEST ARGS...]
    python tools/test_prereqs.py --ensure-npm     (the Makefile, before `npm install`)

- Chromium (Debian's, at /usr/bin/chromium) for the browser journeys, unless LANYARD_SKIP_BROWSER=1.
- A PostgreSQL server when PostgreSQL is among the databases asked for: LANYARD_TEST_PG (default
  127.0.0.1:5432, user postgres) when it answers; otherwise a throwaway cluster made with the installed
  server binaries (initdb and pg_ctl) in a temporary folder, on a free port, trust auth, fsync off, run
  by an unprivileged user when we are root, and stopped and removed when pytest ends, however it ends.
- systemd-analyze where LANYARD_REQUIRE_SYSTEMD=1 (CI); npm for axe-core (--ensure-npm).

A missing package is installed with apt-get when we are root on Debian or Ubuntu; otherwise the run
stops with one line naming the package. No browser build is ever downloaded.
Only the standard library: this runs before anything is known to work.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = "/usr/bin/chromium"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_DATABASES = "sqlite,postgresql"
UNPRIVILEGED_USERS = ("postgres", "nobody")


class MissingPrerequisite(SystemExit):
    """Stop the run with one clear line (exit status 2)."""

    def __init__(self, line: str) -> None:
        super().__init__(2)
        self.line = line


def say(message: str) -> None:
    print(f"make test: {message}", file=sys.stderr, flush=True)


# --- what was asked for -----------------------------------------------------------------------------


def databases_asked(pytest_args: list[str], environ: dict[str, str]) -> list[str]:
    """The backends pytest will run on: --databases in the arguments, else LANYARD_TEST_DATABASES, else both."""
    value = environ.get("LANYARD_TEST_DATABASES", DEFAULT_DATABASES)
    for index, arg in enumerate(pytest_args):
        if arg.startswith("--databases="):
            value = arg.split("=", 1)[1]
        elif arg == "--databases" and index + 1 < len(pytest_args):
            value = pytest_args[index + 1]
    return [name.strip() for name in value.split(",") if name.strip()]


# --- packages ---------------------------------------------------------------------------------------


def can_apt() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def apt_install(package: str) -> None:
    say(f"installing {package} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)  # noqa: S603, S607
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env, stdout=subprocess.DEVNULL)  # noqa: S603, S607


def require(found, package: str, why: str):
    """found() again after installing `package` as root with apt; else one line naming it."""
    result = found()
    if result:
        return result
    if can_apt():
        apt_install(package)
        result = found()
        if result:
            return result
    raise MissingPrerequisite(
        f"{why}: install the Debian/Ubuntu package `{package}` (apt-get install {package}) and run make test again"
    )


def ensure_chromium(environ: dict[str, str]) -> None:
    if environ.get("LANYARD_SKIP_BROWSER") == "1":
        say("LANYARD_SKIP_BROWSER=1: the browser journeys will NOT run")
        return
    require(
        lambda: os.access(CHROMIUM, os.X_OK),
        "chromium",
        f"the browser journeys need Debian's Chromium at {CHROMIUM} (or set LANYARD_SKIP_BROWSER=1 to skip them)",
    )


def ensure_npm() -> None:
    require(lambda: shutil.which("npm"), "npm", "the accessibility tests need axe-core, installed with npm")


def ensure_systemd_analyze(environ: dict[str, str]) -> None:
    if environ.get("LANYARD_REQUIRE_SYSTEMD") == "1":
        require(lambda: shutil.which("systemd-analyze"), "systemd", "LANYARD_REQUIRE_SYSTEMD=1 needs systemd-analyze")


# --- PostgreSQL -------------------------------------------------------------------------------------


def reachable(url: str, timeout: float = 3.0) -> bool:
    """A server answers at `url` (a real connection when psycopg is there, else the TCP port)."""
    try:
        import psycopg  # noqa: PLC0415 (optional here: the script runs on the bare standard library too)
    except ImportError:
        parts = urlsplit(url)
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout=timeout):
                return True
        except OSError:
            return False
    try:
        with psycopg.connect(url, connect_timeout=max(1, int(timeout))) as connection:
            connection.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def server_bindir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, found without knowing the version."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10)  # noqa: S603
            candidates.append(Path(out.stdout.strip()))
    versions = glob.glob("/usr/lib/postgresql/*/bin") + glob.glob("/usr/pgsql-*/bin")
    candidates += sorted((Path(p) for p in versions), key=_version_key, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for folder in candidates:
        if all(os.access(folder / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _version_key(path: Path) -> tuple:
    digits = "".join(c if c.isdigit() else " " for c in str(path)).split()
    return tuple(int(d) for d in digits)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Cluster:
    folder: Path
    bindir: Path
    port: int
    user: str | None  # the unprivileged account the server runs as (root only), else None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def _run(self, *command: str, **kwargs) -> subprocess.CompletedProcess:
        if self.user:
            account = pwd.getpwnam(self.user)
            kwargs.update(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
            kwargs["env"] = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.folder), "LC_ALL": "C.UTF-8"}
        return subprocess.run(command, check=False, capture_output=True, text=True, cwd=self.folder, **kwargs)  # noqa: S603

    def stop(self) -> None:
        """Stop the server (immediately: nothing in it is kept) and remove the folder."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(
                    str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop", timeout=60
                )
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def start_cluster(bindir: Path | None = None, port: int | None = None, attempts: int = 3) -> Cluster:
    """initdb and start a throwaway cluster in a new temporary folder; raise RuntimeError if it won't start."""
    bindir = bindir or server_bindir()
    if bindir is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl, postgres) found")
    user = None
    if os.geteuid() == 0:
        user = next((name for name in UNPRIVILEGED_USERS if _has_user(name)), None)
        if user is None:
            raise RuntimeError("running as root and no unprivileged user (postgres or nobody) to run PostgreSQL as")
    folder = Path(tempfile.mkdtemp(prefix="lanyard-pg-"))
    if user:
        account = pwd.getpwnam(user)
        os.chown(folder, account.pw_uid, account.pw_gid)
    cluster = Cluster(folder=folder, bindir=bindir, port=port or free_port(), user=user)
    try:
        _initdb(cluster)
        for attempt in range(attempts):
            result = cluster._run(
                str(bindir / "pg_ctl"),
                "-D",
                str(cluster.data),
                "-l",
                str(folder / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                _server_options(cluster),
                "start",
                start_new_session=True,  # a Ctrl-C meant for pytest does not reach the server; we stop it ourselves
                timeout=90,
            )
            if result.returncode == 0:
                return cluster
            if attempt + 1 < attempts and port is None:
                cluster.port = free_port()  # someone took the port between our look and the server's bind
        log = (folder / "server.log").read_text(errors="replace")[-2000:] if (folder / "server.log").exists() else ""
        raise RuntimeError(f"PostgreSQL did not start: {result.stderr.strip()} {log.strip()}")
    except BaseException:
        cluster.stop()
        raise


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _initdb(cluster: Cluster) -> None:
    base = [str(cluster.bindir / "initdb"), "-D", str(cluster.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]
    result = cluster._run(*base, "--locale=C.UTF-8", timeout=120)
    if result.returncode != 0:  # a system without the C.UTF-8 locale
        shutil.rmtree(cluster.data, ignore_errors=True)
        result = cluster._run(*base, "--no-locale", timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed: {result.stderr.strip()}")


def _server_options(cluster: Cluster) -> str:
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(cluster.port),
        "unix_socket_directories": str(cluster.folder),
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "200",
    }
    return " ".join(f"-c {key}={value}" for key, value in settings.items())


@contextlib.contextmanager
def throwaway_server() -> Iterator[str]:
    """A throwaway cluster's admin URL for the length of the `with`; stopped and removed however it ends."""
    bindir = require(server_bindir, "postgresql", "no PostgreSQL server is reachable and none is installed to start one")
    cluster = start_cluster(bindir)
    say(f"PostgreSQL: throwaway cluster on {cluster.url} in {cluster.folder} (removed when the run ends)")
    try:
        yield cluster.url
    finally:
        cluster.stop()
        say("PostgreSQL: throwaway cluster stopped and removed")


# --- running pytest ---------------------------------------------------------------------------------


def run_pytest(pytest_args: list[str], env: dict[str, str]) -> int:
    """pytest as a child; Ctrl-C reaches it directly (same process group), SIGTERM/SIGHUP are passed on."""
    child = subprocess.Popen([sys.executable, "-m", "pytest", *pytest_args], env=env)  # noqa: S603

    def pass_on(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, pass_on) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # pytest got the same Ctrl-C; let it finish its own teardown
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.poll() is None:
            child.kill()
            child.wait()


def _exec_pytest(argv: list[str], env: dict[str, str]) -> None:
    os.execve(sys.executable, [sys.executable, "-m", "pytest", *argv], env)  # noqa: S606


def _terminated(signum, _frame):
    raise SystemExit(128 + signum)  # so a throwaway cluster is still stopped and removed


def main(argv: list[str]) -> int:
    environ = dict(os.environ)
    if argv == ["--ensure-npm"]:  # from the Makefile, before `npm install` (and before the venv exists)
        try:
            ensure_npm()
        except MissingPrerequisite as missing:
            print(f"make test: {missing.line}", file=sys.stderr)
            return 2
        return 0
    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGHUP, _terminated)
    try:
        ensure_chromium(environ)
        ensure_systemd_analyze(environ)
        if "postgresql" not in databases_asked(argv, environ):
            _exec_pytest(argv, environ)
        configured = environ.get("LANYARD_TEST_PG") or DEFAULT_PG
        if reachable(configured):
            say(f"PostgreSQL: using {configured}")
            _exec_pytest(argv, {**environ, "LANYARD_TEST_PG": configured})
        say(f"PostgreSQL: nothing answers at {configured}; starting a throwaway cluster")
        with throwaway_server() as url:
            status = run_pytest(argv, {**environ, "LANYARD_TEST_PG": url})
            say(f"pytest exited {status}" if status >= 0 else f"pytest was ended by signal {-status}")
            return status if status >= 0 else 128 - status
    except MissingPrerequisite as missing:
        print(f"make test: {missing.line}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        print(f"make test: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
