"""The shared engines (smartmkt/runtime/engines.py) as plain processes: PostgreSQL, Redis and
RabbitMQ from their Debian packages start in their own folders, answer real protocol requests,
listen on loopback only, and leave nothing running once stopped (Erlang's port mapper included)."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import listening_addresses
from sqlalchemy import text

from smartmkt.runtime.engines import Engines, missing_packages
from smartmkt.runtime.processes import healthy
from smartmkt.runtime.stack import RunningStack, free_port, running_services
from smartmkt.store.db import make_engine

LOOPBACK = {"127.0.0.1", "::1"}  # epmd also binds IPv6 loopback


def _redis(port: int, *command: str) -> bytes:
    """One Redis command in its wire protocol (RESP), the reply's first line."""
    request = f"*{len(command)}\r\n".encode() + b"".join(
        f"${len(part.encode())}\r\n{part}\r\n".encode() for part in command
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(request)
        return conn.recv(256).split(b"\r\n")[0]


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A folder the postgres user can reach (pytest's own are private to the user running it)."""
    folder = Path(tempfile.mkdtemp(prefix="smartmkt-engines-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def engines() -> Iterator[tuple[Engines, RunningStack]]:
    assert missing_packages() == [], "make setup installs the engines' Debian packages"
    folder = Path(tempfile.mkdtemp(prefix="smartmkt-engines-"))
    folder.chmod(0o755)
    found = Engines(folder, free_port(), free_port(), free_port())
    with running_services(found.specs(), folder / "logs", timeout=120) as running:
        yield found, running
    shutil.rmtree(folder, ignore_errors=True)


def test_each_engine_answers_its_protocol(engines: tuple[Engines, RunningStack]) -> None:
    found, running = engines
    assert all(running.alive().values())
    database = make_engine(f"postgresql+psycopg://smartmkt@127.0.0.1:{found.postgres_port}/postgres")
    with database.connect() as conn:
        assert conn.execute(text("select current_user")).scalar() == "smartmkt"
    database.dispose()
    assert _redis(found.redis_port, "SET", "smartmkt:probe", "42") == b"+OK"
    assert _redis(found.redis_port, "GET", "smartmkt:probe") == b"$2"  # a 2-byte bulk string
    assert healthy(f"amqp://127.0.0.1:{found.rabbitmq_port}")  # Connection.Start for our header


def test_engines_listen_on_loopback_only(engines: tuple[Engines, RunningStack]) -> None:
    found, _running = engines
    ports = [found.postgres_port, found.redis_port, found.rabbitmq_port, found.epmd_port]
    listening = {port: listening_addresses(port) for port in ports}
    assert all(addresses and addresses <= LOOPBACK for addresses in listening.values()), listening
    # the Erlang distribution's port too (RabbitMQ's node talks to its CLI tools on it)
    assert listening_addresses(found.rabbitmq_port + 1) <= LOOPBACK


def test_stopped_engines_leave_nothing_running(run_dir: Path) -> None:
    found = Engines(run_dir, free_port(), free_port(), free_port())
    with running_services(found.specs(), run_dir / "logs", timeout=120) as running:
        pids = [proc.pid for proc in running.processes.values()]
    urls = [spec.health_url for spec in found.specs()]
    assert not any(healthy(url, timeout=1) for url in urls)
    left = [
        cmdline
        for proc in Path("/proc").iterdir()
        if proc.name.isdigit() and (cmdline := _cmdline(proc))
        if str(run_dir) in cmdline or str(found.epmd_port) in cmdline
    ]
    assert left == [], left
    assert all(not Path(f"/proc/{pid}").exists() or _zombie(pid) for pid in pids)


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_a_run_dir_postgres_cannot_reach_is_a_clear_error(tmp_path: Path) -> None:
    import os

    from smartmkt.runtime.engines import EngineError

    if os.geteuid() != 0:
        pytest.fail("this machine runs the suite as root (make setup installs with apt-get)")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(EngineError, match="the postgres user cannot write there"):
        Engines(private, free_port(), free_port(), free_port()).postgres()
