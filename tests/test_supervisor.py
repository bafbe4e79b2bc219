"""The supervisor on small real servers (``python -m http.server`` with a /health file): a service
that dies is restarted, one that stops answering (SIGSTOP: alive, port open, silent) is
restarted, restarts back off, and stopping ends every process of every service."""

from __future__ import annotations

import io
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from smartmkt.runtime import supervisor as sup
from smartmkt.runtime.processes import ServiceSpec
from smartmkt.runtime.stack import free_port
from smartmkt.runtime.supervisor import State, Supervisor, Watched


def web_server(name: str, folder: Path) -> ServiceSpec:
    (folder / "health").write_text("ok")
    port = free_port()
    return ServiceSpec(
        name,
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        folder,
        dict(os.environ),
        f"http://127.0.0.1:{port}/health",
    )


@contextmanager
def supervising(*specs: ServiceSpec) -> Iterator[tuple[Supervisor, io.StringIO]]:
    """A supervisor running ``specs`` on a thread, its log in a string; stopped at the end."""
    out = io.StringIO()
    supervisor = Supervisor(list(specs), out=out)
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    try:
        yield supervisor, out
    finally:
        supervisor.stop()
        thread.join(60)
        assert not thread.is_alive()


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[tuple[Supervisor, io.StringIO]]:
    with supervising(web_server("web", tmp_path)) as (supervisor, out):
        assert supervisor.wait_all_up(60), out.getvalue()
        yield supervisor, out


def wait_for(condition, limit_s: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def restarted_after(watched: Watched, signum: int) -> int:
    """Send ``signum`` to the service's process; wait until a new one is up. The old pid."""
    assert watched.proc is not None
    first = watched.proc.pid
    os.kill(first, signum)
    wait_for(lambda: watched.state is State.UP and watched.proc is not None and watched.proc.pid != first)
    return first


def test_a_dead_service_is_restarted(supervised: tuple[Supervisor, io.StringIO]) -> None:
    supervisor, out = supervised
    watched = supervisor.services["web"]
    restarted_after(watched, signal.SIGKILL)
    assert "web exited with code -9; restarting" in out.getvalue()
    assert httpx.get(watched.spec.health_url, timeout=5).status_code == 200


def test_a_silent_service_is_restarted(supervised: tuple[Supervisor, io.StringIO]) -> None:
    """Alive, its port open, answering nothing: the health check catches what a process check
    cannot."""
    supervisor, out = supervised
    first = restarted_after(supervisor.services["web"], signal.SIGSTOP)
    assert "web stopped answering its health check" in out.getvalue()
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)  # the wedged process is gone, not left behind


def test_restarts_back_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A service that dies at once is started again after 0.5 s, 1 s, 2 s, ... not in a tight loop."""
    monkeypatch.setattr(sup, "CHECK_INTERVAL_S", 0.1)
    crashing = ServiceSpec(
        "crash", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path, dict(os.environ), ""
    )
    with supervising(crashing) as (supervisor, out):
        wait_for(lambda: supervisor.services["crash"].restarts >= 3, 30)
    delays = [float(d) for d in re.findall(r"restarting in ([\d.]+) s", out.getvalue())]
    assert delays[:3] == [0.5, 1.0, 2.0]
    assert "crash exited with code 3" in out.getvalue()
    assert supervisor.not_up() == {"crash": "exited with code 3"}


def test_stop_ends_every_process(supervised: tuple[Supervisor, io.StringIO]) -> None:
    supervisor, out = supervised
    watched = supervisor.services["web"]
    assert watched.proc is not None
    pid = watched.proc.pid
    supervisor.stop()
    wait_for(lambda: watched.state is State.STOPPED)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "all services stopped" in out.getvalue()


def test_a_model_that_fails_to_load_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A service that says which model failed (as the app and the action server do) and exits:
    the supervisor's report names the model, not only the exit code."""
    monkeypatch.setattr(sup, "CHECK_INTERVAL_S", 0.1)
    script = (
        "print('model not ready: recommender failed to load: no such file', flush=True); raise SystemExit(3)"
    )
    failing = ServiceSpec("actions", [sys.executable, "-c", script], tmp_path, dict(os.environ), "")
    with supervising(failing) as (supervisor, _out):
        wait_for(lambda: supervisor.services["actions"].restarts >= 1, 30)
    reason = supervisor.not_up()["actions"]
    assert "exited with code 3" in reason and "model not ready: recommender failed to load" in reason
