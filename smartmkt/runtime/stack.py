"""Start the real three-process stack (or some of its services) on free loopback ports, for
tests and benchmarks.

Each process logs to its own file under ``log_dir``; on exit all are terminated (then killed).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from smartmkt.runtime.processes import ServiceSpec, service_specs, wait_healthy
from smartmkt.settings import Settings


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reap(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Wait for a process told to stop; kill it if it has not within ``timeout`` seconds."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class RunningStack:
    settings: Settings
    processes: dict[str, subprocess.Popen[bytes]]
    log_dir: Path
    specs: dict[str, ServiceSpec] = field(default_factory=dict)

    @property
    def rest_url(self) -> str:
        return f"{self.settings.rasa_url}/webhooks/rest/webhook"

    def logs(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def alive(self) -> dict[str, bool]:
        return {name: proc.poll() is None for name, proc in self.processes.items()}

    def stop(self, name: str, kill: bool = False) -> None:
        """Stop one service: SIGTERM (a clean shutdown), or with ``kill`` SIGKILL to the service
        and every process it started (a crash)."""
        proc = self.processes[name]
        if proc.poll() is None:
            if kill:
                os.killpg(proc.pid, signal.SIGKILL)  # each service leads its own session
            else:
                proc.send_signal(self.specs[name].stop_signal if name in self.specs else signal.SIGTERM)
            reap(proc)

    def start(self, name: str, timeout: float = 300.0) -> None:
        """Start a stopped service again (its log continues) and wait until it is healthy."""
        spec = self.specs[name]
        if self.processes[name].poll() is None:
            raise RuntimeError(f"{name} is still running")
        self.processes[name] = _start(spec, self.log_dir, append=True)
        if not wait_healthy([spec.health_url], timeout=timeout)[spec.health_url]:
            raise RuntimeError(f"{name} not healthy again within {timeout:g} s; see {self.log_dir}")

    def restart(self, name: str, kill: bool = False, timeout: float = 300.0) -> None:
        self.stop(name, kill=kill)
        self.start(name, timeout=timeout)


def with_free_ports(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"app_port": free_port(), "action_port": free_port(), "rasa_port": free_port()}
    )


def _start(spec: ServiceSpec, log_dir: Path, append: bool = False) -> subprocess.Popen[bytes]:
    with (log_dir / f"{spec.name}.log").open("ab" if append else "wb") as log:  # the child keeps its copy
        return subprocess.Popen(
            spec.command,
            cwd=spec.cwd,
            env=spec.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=spec.user,
        )


@contextmanager
def running_stack(
    settings: Settings, log_dir: Path, timeout: float = 300.0, services: Collection[str] | None = None
) -> Iterator[RunningStack]:
    """Rasa + action server + app with ``settings``, or only the ``services`` named (e.g.
    ``["app"]``); raises if any is not healthy in time."""
    specs = service_specs(settings)
    if services is not None:
        unknown = set(services) - {spec.name for spec in specs}
        if unknown:
            raise ValueError(f"no such service: {', '.join(sorted(unknown))}")
        specs = [spec for spec in specs if spec.name in services]
    with running_services(specs, log_dir, timeout, settings) as stack:
        yield stack


@contextmanager
def running_services(
    specs: list[ServiceSpec], log_dir: Path, timeout: float = 300.0, settings: Settings | None = None
) -> Iterator[RunningStack]:
    """Any ``specs`` (smartmkt's services, the engines of smartmkt.runtime.engines), each logging
    to ``log_dir``; raises if any is not healthy in time, and stops them all on the way out."""
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = {spec.name: _start(spec, log_dir) for spec in specs}
    stack = RunningStack(settings or Settings(), processes, log_dir, {spec.name: spec for spec in specs})
    try:
        ready = wait_healthy([s.health_url for s in specs], timeout=timeout)
        if not all(ready.values()):
            dead = {n: p.returncode for n, p in processes.items() if p.poll() is not None}
            raise RuntimeError(f"services not ready: {ready}; exited: {dead}; logs in {log_dir}")
        yield stack
    finally:
        for spec in specs:
            if processes[spec.name].poll() is None:
                processes[spec.name].send_signal(spec.stop_signal)
        for proc in processes.values():
            reap(proc)
