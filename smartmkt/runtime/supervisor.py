"""The supervisor behind `smartmkt run`: it starts every service, watches each one's health (not
only whether its first process lives) and restarts a service that dies or stops answering.

Why not only the process: the action server's parent (``python -m actions.action_server``) keeps its
port open after its Sanic worker dies, so connections are accepted and never answered; every
action call then waited for Rasa's action timeout. A failed health check catches that. A service
is restarted as a whole (its process group: the parent and every worker), which also resets the
connections a wedged server was holding, so callers waiting on it fail at once instead of at
their timeout.

Restarts back off (``RESTART_BACKOFF_S``, doubling up to ``MAX_BACKOFF_S``), and the backoff is
forgotten once a service has been healthy for ``STABLE_AFTER_S``. Every start, exit, missed
health check and restart is logged, one line each, prefixed with the supervisor's name.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from enum import Enum
from typing import IO

from smartmkt.runtime.processes import ServiceSpec, healthy

CHECK_INTERVAL_S = 1.0
CHECK_TIMEOUT_S = 1.5
MISSED_CHECKS_TO_RESTART = 2  # a wedged server is restarted ~3-4 s after it stops answering
STARTUP_TIMEOUT_S = 300.0
RESTART_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
STABLE_AFTER_S = 60.0
STOP_GRACE_S = 20.0
SELF = "smartmkt"  # the prefix of the supervisor's own lines
NOT_READY = "model not ready:"  # how a service names a model that failed to load


class State(Enum):
    STARTING = "starting"
    UP = "up"
    WAITING = "waiting"  # for its backoff before the next start
    STOPPED = "stopped"


@dataclass
class Watched:
    spec: ServiceSpec
    proc: subprocess.Popen[bytes] | None = None
    state: State = State.STOPPED
    since: float = 0.0  # monotonic time of the last state change
    missed: int = 0  # health checks missed in a row while up
    restarts: int = 0  # restarts since it was last stable
    next_start: float = 0.0
    last_reason: str = ""
    not_ready: str = ""  # the last model it said failed to load

    def why_not_up(self) -> str:
        reasons = [self.last_reason or self.state.value]
        if self.not_ready:
            reasons.append(f"{NOT_READY} {self.not_ready}")
        return "; ".join(reasons)

    def enter(self, state: State) -> None:
        self.state, self.since, self.missed = state, time.monotonic(), 0


def check_health(url: str) -> bool:
    return healthy(url, timeout=CHECK_TIMEOUT_S)


@dataclass
class Supervisor:
    """Runs ``specs`` until :meth:`stop`, writing every service's output to ``out``, one line
    each, prefixed with the service's name (as honcho did)."""

    specs: list[ServiceSpec]
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    check: Callable[[str], bool] = check_health
    on_start: Callable[[Watched], None] | None = None  # told of every start (e.g. to record pids)
    services: dict[str, Watched] = field(init=False)
    _stopping: threading.Event = field(init=False, default_factory=threading.Event)
    _write_lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _to_launch: queue.SimpleQueue[str] = field(init=False, default_factory=queue.SimpleQueue)

    def __post_init__(self) -> None:
        self.services = {spec.name: Watched(spec) for spec in self.specs}
        self._width = max(len(name) for name in [*self.services, SELF])

    # --- output ------------------------------------------------------------------------------
    def write(self, name: str, line: str) -> None:
        with self._write_lock:
            self.out.write(f"{name:<{self._width}} | {line.rstrip()}\n")
            self.out.flush()

    def say(self, message: str) -> None:
        self.write(SELF, message)

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            self.write(name, line)
            if NOT_READY in line:  # a model that failed to load, by name: kept for not_up()
                self.services[name].not_ready = line.split(NOT_READY, 1)[1].strip()
        stream.close()

    # --- one service -------------------------------------------------------------------------
    def _start(self, watched: Watched) -> None:
        spec = watched.spec
        watched.proc = subprocess.Popen(
            spec.command,
            cwd=spec.cwd,
            env=spec.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped (and killed) as a whole
            user=spec.user,
        )
        assert watched.proc.stdout is not None
        threading.Thread(target=self._pump, args=(spec.name, watched.proc.stdout), daemon=True).start()
        watched.enter(State.STARTING)
        self.say(f"{spec.name} started (pid {watched.proc.pid})")
        if self.on_start is not None:
            self.on_start(watched)

    def _stop(self, watched: Watched, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM to the service's process group, SIGKILL after ``grace`` seconds."""
        self._terminate(watched)
        self._reap(watched, grace)

    @staticmethod
    def _terminate(watched: Watched) -> None:
        """The service's stop signal (SIGTERM, or its own) to its process group (its workers
        too, if the parent has gone)."""
        if watched.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(watched.proc.pid, watched.spec.stop_signal)

    @staticmethod
    def _reap(watched: Watched, grace: float) -> None:
        """Wait ``grace`` seconds for a service told to stop, then SIGKILL its process group."""
        proc = watched.proc
        if proc is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # workers left behind by a parent that exited
        proc.wait()

    def _schedule_restart(self, watched: Watched, reason: str) -> None:
        delay = min(MAX_BACKOFF_S, RESTART_BACKOFF_S * 2**watched.restarts)
        watched.restarts += 1
        watched.last_reason = reason
        self.say(f"{watched.spec.name} {reason}; restarting in {delay:g} s (restart #{watched.restarts})")
        self._stop(watched, grace=2.0)  # it is already failing: no long goodbye
        watched.enter(State.WAITING)
        watched.next_start = time.monotonic() + delay

    def _watch(self, watched: Watched) -> None:
        now = time.monotonic()
        if watched.state is State.WAITING:
            if now >= watched.next_start:
                self._start(watched)
            return
        proc = watched.proc
        if proc is None or watched.state is State.STOPPED:
            return
        code = proc.poll()
        if code is not None:
            self._schedule_restart(watched, f"exited with code {code}")
            return
        ok = self.check(watched.spec.health_url)
        if watched.state is State.STARTING:
            if ok:
                watched.enter(State.UP)
                watched.not_ready = ""
                self.say(f"{watched.spec.name} is healthy ({watched.spec.health_url})")
            elif now - watched.since > STARTUP_TIMEOUT_S:
                self._schedule_restart(watched, f"not healthy within {STARTUP_TIMEOUT_S:g} s")
            return
        if ok:
            watched.missed = 0
            if watched.restarts and now - watched.since > STABLE_AFTER_S:
                watched.restarts = 0
            return
        watched.missed += 1
        self.say(f"{watched.spec.name} missed a health check ({watched.missed}/{MISSED_CHECKS_TO_RESTART})")
        if watched.missed >= MISSED_CHECKS_TO_RESTART:
            self._schedule_restart(watched, "stopped answering its health check")

    # --- all of them -------------------------------------------------------------------------
    def all_up(self, names: Collection[str] | None = None) -> bool:
        """Whether every service (or every one of ``names``) is up."""
        return all(w.state is State.UP for n, w in self.services.items() if names is None or n in names)

    def wait_all_up(self, timeout: float = STARTUP_TIMEOUT_S, names: Collection[str] | None = None) -> bool:
        deadline = time.monotonic() + timeout
        while not self.all_up(names):
            if time.monotonic() > deadline or self._stopping.is_set():
                return False
            time.sleep(0.2)
        return True

    def not_up(self) -> dict[str, str]:
        """Why each service that is not up is not: its last exit or missed checks, and the
        model it said failed to load."""
        return {name: w.why_not_up() for name, w in self.services.items() if w.state is not State.UP}

    def launch(self, names: Collection[str]) -> None:
        """Start services that :meth:`run` was told to leave stopped (from any thread): a
        staged start, e.g. the replicas once the engines they need are up and prepared."""
        unknown = set(names) - set(self.services)
        if unknown:
            raise ValueError(f"no such service: {', '.join(sorted(unknown))}")
        for name in names:
            self._to_launch.put(name)

    def _launch_pending(self) -> None:
        while not self._to_launch.empty():
            watched = self.services[self._to_launch.get()]
            if watched.state is State.STOPPED:
                self._start(watched)

    def run(self, first: Collection[str] | None = None) -> None:
        """Start everything (or only the services named in ``first``; :meth:`launch` starts the
        rest) and watch until :meth:`stop` (or SIGINT/SIGTERM via :meth:`serve`)."""
        for name, watched in self.services.items():
            if first is None or name in first:
                self._start(watched)
        while not self._stopping.wait(CHECK_INTERVAL_S):
            self._launch_pending()
            for watched in self.services.values():
                if self._stopping.is_set():
                    break
                self._watch(watched)
        self._shutdown()

    def stop(self) -> None:
        self._stopping.set()

    def _shutdown(self) -> None:
        self.say("stopping all services")
        for watched in self.services.values():  # all at once, then wait for each
            self._terminate(watched)
        for watched in self.services.values():
            self._reap(watched, STOP_GRACE_S)
            watched.enter(State.STOPPED)
        self.say("all services stopped")

    def serve(self, first: Collection[str] | None = None) -> int:
        """:meth:`run` in the foreground; Ctrl-C (SIGINT) or SIGTERM stops every service."""

        def on_signal(_signum: int, _frame: object) -> None:
            self.stop()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        self.run(first)
        return 0
