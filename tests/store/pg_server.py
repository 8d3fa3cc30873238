"""A throwaway PostgreSQL server for the store's tests and benchmarks.

It runs Debian's (or any) PostgreSQL binaries directly: ``initdb`` into a fresh temporary
folder, ``pg_ctl start`` on 127.0.0.1 and a free port (and a Unix socket inside that folder),
and on exit an immediate stop and removal of the folder. Nothing outside the folder is touched.

``initdb`` and ``postgres`` refuse to run as root; as root (CI containers, this machine) the
server runs as the ``postgres`` system user that Debian's package creates (``runuser -u
postgres``), and the folder is handed to that user.

The server has two roles: the superuser ``postgres`` (trusted on the Unix socket only, for
creating databases) and ``lesionviewer`` with a password (SCRAM over TCP), which owns every
database :meth:`PostgresServer.create_database` makes; the store connects as that role, as a
team's workstations would. Run as a script, it starts a server and prints its URL until
Ctrl-C (for trying the app against it).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROLE = "lesionviewer"
ROLE_PASSWORD = "pw-ä'\"; DROP TABLE cases;--"  # quotes and SQL on purpose: must survive binding and redaction
BIN_ENV = "LESIONVIEWER_PG_BIN"  # a folder holding initdb/pg_ctl, to use another PostgreSQL


TEAM = "lesionviewer_team"  # docs/store.md's group role: the team's logins are its members


def login_url(url: str, user: str | None) -> str:
    """``url`` (of a database as the ``lesionviewer`` owner role) turned into the URL of the
    personal login ``user``, as each person of a team logs in with their own (docs/store.md).

    On a team store the store's user *is* the database login, so a test that works as "alice"
    must log in as alice. Made here with the owner's URL: the login (same password as the
    owner, so a wrong password stays wrong), the store's tables (migrated as the owner, who
    opens a new store first) and docs/store.md's GRANTs to the team. A SQLite URL, another
    login's URL, no user or the owner itself: ``url`` unchanged. When the server cannot be
    reached the URL is still rewritten (opening it then fails as it should)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or parsed.username != ROLE or user in (None, ROLE):
        return url
    try:
        _prepare_login(parsed, user)
    except Exception:  # noqa: BLE001 - server gone or wrong password: the open says so
        pass
    return parsed.set(username=user).render_as_string(hide_password=False)


def _prepare_login(owner_url, user: str) -> None:
    import psycopg
    from psycopg import sql

    from lesionviewer.store import db

    with psycopg.connect(host=owner_url.host, port=owner_url.port, user=ROLE, dbname=owner_url.database,
                         password=owner_url.password, autocommit=True, connect_timeout=5) as conn:
        for statement in (sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(TEAM)),
                          sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                              sql.Identifier(user), sql.Literal(ROLE_PASSWORD), sql.Identifier(TEAM))):
            try:
                conn.execute(statement)
            except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
                pass  # made by an earlier test, or by another client process just now
    engine = db.make_engine(owner_url.render_as_string(hide_password=False))
    try:
        with db.writing(engine) as conn:
            db.migrate(conn)  # under the store's advisory lock: one client at a time
            for grant in ("GRANT CONNECT ON DATABASE {db} TO {team}",
                          "GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {team}",
                          "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {team}"):
                conn.exec_driver_sql(sql.SQL(grant).format(
                    db=sql.Identifier(owner_url.database), team=sql.Identifier(TEAM)).as_string(None))
    finally:
        engine.dispose()


class PostgresUnavailable(RuntimeError):
    """PostgreSQL binaries are missing, or the server could not be started (the message says why)."""


def find_bin_dir() -> Path | None:
    """The folder of ``initdb``/``pg_ctl``: $LESIONVIEWER_PG_BIN, then PATH, then the newest
    Debian/Ubuntu ``/usr/lib/postgresql/<version>/bin``; None when there is none."""
    candidates = [os.environ.get(BIN_ENV)]
    on_path = shutil.which("pg_ctl")
    candidates.append(os.path.dirname(on_path) if on_path else None)
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                      key=lambda p: [int(x) for x in Path(p).parent.name.split(".") if x.isdigit()])
    candidates += reversed(versions)
    for folder in candidates:
        if folder and all((Path(folder) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


def unavailable_reason() -> str | None:
    """Why no server can be started here (None when it can be tried)."""
    if find_bin_dir() is None:
        return (f"PostgreSQL is not installed (no initdb/pg_ctl on PATH, in /usr/lib/postgresql/*/bin "
                f"or ${BIN_ENV}); install Debian's 'postgresql' package to run these tests")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root and 'runuser' is missing"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One throwaway server; use as a context manager (``with PostgresServer() as server``).

    ``durable=False`` (tests) turns fsync off: a killed *client* still loses nothing, but the
    server would not survive a power cut. Benchmarks pass ``durable=True`` so their figures
    include the real commit cost.
    """

    def __init__(self, durable: bool = False) -> None:
        self.durable = durable
        self.bin_dir: Path | None = None
        self.root: Path | None = None
        self.port: int | None = None
        self._names = itertools.count(1)
        self._as_postgres = os.geteuid() == 0

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> "PostgresServer":
        reason = unavailable_reason()
        if reason:
            raise PostgresUnavailable(reason)
        self.bin_dir = find_bin_dir()
        # In /tmp: the socket path must stay under 108 bytes, and the postgres user must be
        # able to reach the folder (a $TMPDIR under /root would not let it).
        self.root = Path(tempfile.mkdtemp(prefix="lv-pg-", dir="/tmp" if os.path.isdir("/tmp") else None))
        atexit.register(self.stop)  # also when a test run ends without the fixture's teardown
        try:
            if self._as_postgres:
                entry = pwd.getpwnam("postgres")
                os.chown(self.root, entry.pw_uid, entry.pw_gid)
            pwfile = self.root / "pw"
            pwfile.write_text("postgres-unused-" + os.urandom(8).hex() + "\n")
            if self._as_postgres:
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "-E", "UTF8", "--locale=C",
                      "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
                      *([] if self.durable else ["--no-sync"]))
            pwfile.unlink()
            last_error = None
            for _ in range(3):  # another process may take the free port between probe and start
                self.port = _free_port()
                try:
                    self._pg_ctl_start()
                    break
                except PostgresUnavailable as e:
                    last_error = e
            else:
                raise last_error
            from psycopg import sql  # utility statements take no bound parameters: quote as a literal

            self._admin_sql(sql.SQL("CREATE ROLE {} LOGIN CREATEDB CREATEROLE PASSWORD {}").format(
                sql.Identifier(ROLE), sql.Literal(ROLE_PASSWORD)))
        except BaseException:
            self.stop()
            raise
        return self

    def _pg_ctl_start(self) -> None:
        options = [f"-p {self.port}", f"-k {self.root}", "-c listen_addresses=127.0.0.1",
                   "-c max_connections=60", "-c shared_buffers=64MB"]
        if not self.durable:
            options += ["-c fsync=off", "-c full_page_writes=off", "-c synchronous_commit=off"]
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", " ".join(options), "start")

    def stop(self) -> None:
        """Stop the server at once (no checkpoint: its data is thrown away) and remove its folder."""
        if self.root is None:
            return
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(PostgresUnavailable):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- paths and URLs -----------------------------------------------------------------------
    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str, password: bool = True) -> str:
        """SQLAlchemy URL of ``database`` as the ``lesionviewer`` role over TCP (with its
        password, percent-encoded, unless ``password=False``)."""
        from urllib.parse import quote

        secret = f":{quote(ROLE_PASSWORD, safe='')}" if password else ""
        return f"postgresql+psycopg://{ROLE}{secret}@127.0.0.1:{self.port}/{database}"

    # -- databases ----------------------------------------------------------------------------
    def create_database(self, name: str | None = None) -> str:
        """A new, empty database owned by the ``lesionviewer`` role; returns its name."""
        from psycopg import sql

        name = name or f"lv_test_{next(self._names)}"
        self._admin_sql(sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
            sql.Identifier(name), sql.Identifier(ROLE)))
        return name

    def drop_database(self, name: str) -> None:
        from psycopg import sql

        self._admin_sql(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def _admin_sql(self, statement) -> None:
        import psycopg

        with psycopg.connect(host=str(self.root), port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(statement)

    # -- running the binaries -----------------------------------------------------------------
    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, cwd=self.root, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=120)
        if done.returncode != 0:
            log_tail = self.log.read_text(errors="replace")[-1500:] if self.log.exists() else ""
            raise PostgresUnavailable(f"{tool} failed ({done.returncode}): "
                                      f"{(done.stderr or done.stdout).strip()[-1500:]}\n{log_tail}".strip())


if __name__ == "__main__":
    with PostgresServer() as server:
        name = server.create_database("lesionviewer")
        print(f"LESIONVIEWER_DB={server.url(name)}", flush=True)
        print("(Ctrl-C stops the server and removes its data)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
