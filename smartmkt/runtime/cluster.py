"""Several replicas of every service on one machine, as plain processes under one supervisor:
the production shape (`smartmkt cluster up`), and what the replica tests start.

    browser, shop ──> HAProxy :8080 ──┬─ /socket.io, /webhooks ─> rasa1..N (sticky for socket.io)
                                      └─ everything else ──────> app1..N
    rasa1..N ─> HAProxy :8081 ─> actions1..N        rasa1..N ─> HAProxy :8080 ─> app1..N (NLU)
    PostgreSQL (store + Rasa's tracker), Redis (Rasa's lock store), RabbitMQ (Rasa's events ─>
    the console consumer ─> the console's conversation index)

The start is staged: the engines first; then, once they answer, the store is created, migrated and
given the demo data (what `smartmkt run` does before serving), once; then the replicas, the
consumer and HAProxy. Each replica is `smartmkt run`'s own process (runtime.processes), told to
reach its peers through the balancer instead of on its own host.

The cluster's state (its supervisor's pid, and each service's pid, port and health URL) is kept
in ``<run_dir>/cluster.json``, for `cluster status` and `cluster down`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smartmkt.runtime.balancer import STATS_SOCKET, Backend, Balancer, servers_up
from smartmkt.runtime.engines import HOST, Engines
from smartmkt.runtime.processes import ServiceSpec, service_env, service_specs, settings_env
from smartmkt.runtime.stack import free_port
from smartmkt.runtime.supervisor import Supervisor, Watched
from smartmkt.settings import Settings

DEFAULT_REPLICAS = 2
DEFAULT_PORT = 8080
STATE_FILE = "cluster.json"
UP_TIMEOUT_S = 900.0  # a first start may train missing models
QUEUE = "smartmkt_events"  # bot/endpoints.yml's event_broker queue
SERVICES = ("app", "actions", "rasa")
# an action server that died mid-call: its call is sent to another (the actions are safe to
# run twice: smartmkt.store.repository.decide_offer reuses the open offer on the product)
ACTION_RETRIES = "conn-failure empty-response junk-response"


@dataclass(frozen=True)
class Layout:
    """Which port each process of a cluster listens on, and where its engines keep their data."""

    run_dir: Path
    public_port: int  # HAProxy: pages, chat, voice, console, Rasa's socket.io and REST
    actions_port: int  # HAProxy: Rasa's calls to the action servers
    app_ports: tuple[int, ...]
    action_ports: tuple[int, ...]
    rasa_ports: tuple[int, ...]
    consumer_port: int  # the console consumer's /health
    engines: Engines

    @classmethod
    def fixed(cls, run_dir: Path, replicas: int = DEFAULT_REPLICAS, base: int = DEFAULT_PORT) -> Layout:
        """The documented ports: HAProxy on ``base`` (8080) and ``base + 1``, replica ``i`` of
        the app, actions and Rasa on 8100 + i, 8200 + i and 8300 + i, the consumer on 8090,
        PostgreSQL 8432, Redis 8379, RabbitMQ 8672 (and 8673, 8674 for Erlang)."""
        _check_replicas(replicas)
        offset = base - DEFAULT_PORT
        numbered = range(1, replicas + 1)
        return cls(
            run_dir,
            base,
            base + 1,
            tuple(8100 + offset + i for i in numbered),
            tuple(8200 + offset + i for i in numbered),
            tuple(8300 + offset + i for i in numbered),
            8090 + offset,
            Engines(run_dir, 8432 + offset, 8379 + offset, 8672 + offset),
        )

    @classmethod
    def on_free_ports(cls, run_dir: Path, replicas: int = DEFAULT_REPLICAS) -> Layout:
        """Any free loopback ports (tests: several clusters, or one beside `make run`)."""
        _check_replicas(replicas)
        taken: set[int] = set()

        def ports(count: int) -> tuple[int, ...]:
            return tuple(_free_port(taken) for _ in range(count))

        return cls(
            run_dir,
            _free_port(taken),
            _free_port(taken),
            ports(replicas),
            ports(replicas),
            ports(replicas),
            _free_port(taken),
            Engines(run_dir, _free_port(taken), _free_port(taken), _free_run(taken, 3)),
        )

    @property
    def replicas(self) -> int:
        return len(self.app_ports)

    @property
    def public_url(self) -> str:
        return f"http://{HOST}:{self.public_port}"

    def settings(self, base: Settings) -> Settings:
        """``base`` as every replica runs it: the engines' URLs, and its peers behind HAProxy."""
        return base.model_copy(update=self.shared_settings())

    def shared_settings(self) -> dict[str, str]:
        """The settings a cluster changes for every process (docker-compose.yml sets the same)."""
        return {
            "host": HOST,
            "database_url": self.engines.database_url,
            "tracker_url": "",
            "tracker_db": "",
            "redis_url": self.engines.redis_url,
            "amqp_url": self.engines.amqp_url,
            "nlu_url": self.public_url,
            "action_endpoint_url": f"http://{HOST}:{self.actions_port}/webhook",
            "chat_socket_url": self.public_url,
            "forwarded_allow_ips": HOST,  # the app sees the client's address, not HAProxy's
        }

    def replica_specs(self, settings: Settings) -> list[ServiceSpec]:
        """app1..N, actions1..N and rasa1..N: `smartmkt run`'s processes on this layout's ports."""
        specs = []
        ports = zip(self.app_ports, self.action_ports, self.rasa_ports, strict=True)
        for number, (app, action, rasa) in enumerate(ports, start=1):
            own = settings.model_copy(update={"app_port": app, "action_port": action, "rasa_port": rasa})
            specs += [dataclasses.replace(spec, name=f"{spec.name}{number}") for spec in service_specs(own)]
        return specs

    def consumer_spec(self, settings: Settings) -> ServiceSpec:
        """The console consumer: RabbitMQ's queue of Rasa events -> the conversation index."""
        python = settings.project_root / ".venv" / "bin" / "python"
        command = [str(python), "-m", "smartmkt.console.consumer", "--queue", QUEUE]
        command += ["--health-port", str(self.consumer_port)]
        health = f"http://{HOST}:{self.consumer_port}/health"
        return ServiceSpec("consumer", command, settings.project_root, service_env(settings), health)

    def balancer(self) -> Balancer:
        app = Backend("app", self.app_ports)
        actions = Backend("actions", self.action_ports, retry_on=ACTION_RETRIES)
        return Balancer(self.public_port, app, _routes(self.rasa_ports), {self.actions_port: actions})

    def served_specs(self, settings: Settings) -> list[ServiceSpec]:
        """Everything started once the engines are up and the store is prepared."""
        served = [*self.replica_specs(settings), self.consumer_spec(settings)]
        balancer = dataclasses.replace(self.balancer(), access_log=settings.haproxy_access_log)
        return [*served, balancer.spec(self.run_dir / "haproxy")]

    def specs(self, settings: Settings) -> tuple[list[ServiceSpec], list[ServiceSpec]]:
        """(the engines, prepared in their folders; :meth:`served_specs`)."""
        return self.engines.specs(), self.served_specs(settings)


def _routes(rasa_ports: tuple[int, ...], **pool: Any) -> dict[str, Backend]:
    """What HAProxy's public port sends to Rasa (the rest goes to the app): socket.io to a pool
    that keeps each browser on one replica (a cookie: its polling transport's session lives in
    one process), REST webhooks to the same replicas in turn, with no cookie (a shop's server
    sending every customer's messages through one HTTP client would otherwise be pinned to one
    replica; a REST turn needs nothing of a replica's memory)."""
    return {
        "/socket.io": Backend("rasa_socketio", rasa_ports, health_path="/", sticky=True, **pool),
        "/webhooks": Backend("rasa", rasa_ports, health_path="/", **pool),
    }


# The ports each service listens on inside its container in docker-compose.yml (one address each).
COMPOSE_PORTS = {"app": 8000, "actions": 5055, "rasa": 5005, "consumer": 8090}


def compose_balancer(replicas: int = DEFAULT_REPLICAS) -> Balancer:
    """HAProxy as docker-compose.yml runs it: the same routes and checks as :meth:`Layout.balancer`
    and the same public and action ports, with each pool ``replicas`` containers found by
    Docker's DNS (tests/test_config.py checks that the compose file embeds exactly this)."""
    layout = Layout.fixed(Path("/unused"), replicas)

    def pool(name: str, **kwargs: Any) -> Backend:
        return Backend(name, (COMPOSE_PORTS[name],), dns_name=name, replicas=replicas, **kwargs)

    rasa = _routes((COMPOSE_PORTS["rasa"],), dns_name="rasa", replicas=replicas)
    internal = {layout.actions_port: pool("actions", retry_on=ACTION_RETRIES)}
    return Balancer(layout.public_port, pool("app"), rasa, internal, "*", "127.0.0.11:53")


def _check_replicas(replicas: int) -> None:
    if not 1 <= replicas <= 9:
        raise ValueError(f"replicas must be between 1 and 9, not {replicas}")


def _free_port(taken: set[int]) -> int:
    """A free port (stack.free_port) not handed out to this layout already."""
    while (port := free_port()) in taken:
        pass
    taken.add(port)
    return port


def _free_run(taken: set[int], count: int) -> int:
    """The first of ``count`` consecutive free ports (RabbitMQ: AMQP, Erlang's distribution, epmd)."""
    while True:
        first = _free_port(taken)
        run = range(first, first + count)
        if all(_bindable(port) and port not in taken for port in run[1:]):
            taken.update(run)
            return first


def _bindable(port: int) -> bool:
    """Whether a server could listen on ``port`` now (connections of a cluster just stopped,
    still in TIME_WAIT, do not count: servers bind with SO_REUSEADDR, as here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
            return True
        except OSError:
            return False


# --- preparing the store ----------------------------------------------------------------------
def prepare_store(layout: Layout, settings: Settings, say: Any = print) -> None:
    """Once the engines answer: the store's database created, migrated and loaded with the demo
    data, as `smartmkt run` does before serving (no-ops when done before). Models are shared with
    `make run` (models/); a missing one is trained first."""
    _create_database(layout)
    smartmkt = str(settings.project_root / ".venv" / "bin" / "smartmkt")
    env = service_env(settings)
    steps = [[smartmkt, "db", "upgrade"], [smartmkt, "data", "load-demo"]]
    from smartmkt.store import model_registry

    for kind in ("nlu", "core", "recommender", "purchase"):
        registered = "rasa_core" if kind == "core" else kind
        if model_registry.served(settings.models_dir, registered) is None:
            steps.append([smartmkt, "train", kind])
    for step in steps:
        say(f"preparing: {' '.join(step[1:])}")
        done = subprocess.run(step, env=env, capture_output=True, text=True, cwd=settings.project_root)
        if done.returncode != 0:
            raise RuntimeError(f"`{' '.join(step[1:])}` failed: {(done.stderr or done.stdout)[-2000:]}")


def _create_database(layout: Layout) -> None:
    import psycopg

    engines = layout.engines
    admin = f"postgresql://smartmkt@{HOST}:{engines.postgres_port}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'smartmkt'").fetchone():
            conn.execute("CREATE DATABASE smartmkt")


# --- the cluster's own process ------------------------------------------------------------------
@dataclass
class ClusterState:
    """``<run_dir>/cluster.json``: what `status` and `down` read."""

    path: Path
    pid: int = 0  # the supervisor's
    phase: str = "starting"  # starting, preparing, launching, up, failed, stopped
    error: str = ""
    public_url: str = ""
    services: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    @classmethod
    def read(cls, run_dir: Path) -> ClusterState | None:
        path = run_dir / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return cls(path, data["pid"], data["phase"], data["error"], data["public_url"], data["services"])

    def save(self) -> None:
        with self._lock:
            body = {"pid": self.pid, "phase": self.phase, "error": self.error}
            body |= {"public_url": self.public_url, "services": self.services}
            partial = self.path.with_suffix(".tmp")
            partial.write_text(json.dumps(body, indent=2))
            partial.replace(self.path)  # readers never see half a file

    def supervisor_alive(self) -> bool:
        return alive(self.pid)


def alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serve(layout: Layout, base: Settings) -> int:
    """The cluster's supervisor, in the foreground until SIGTERM (what `cluster up` starts in
    the background): the engines, then the store prepared, then every replica and HAProxy."""
    settings = layout.settings(base)
    engines, served = layout.specs(settings)
    ports = _ports(layout)
    state = ClusterState(layout.run_dir / STATE_FILE, os.getpid(), public_url=layout.public_url)

    def record(watched: Watched) -> None:
        spec = watched.spec
        pid = watched.proc.pid if watched.proc else 0
        state.services[spec.name] = {"pid": pid, "port": ports.get(spec.name), "health": spec.health_url}
        state.save()

    supervisor = Supervisor([*engines, *served], on_start=record)
    for spec in [*engines, *served]:
        state.services[spec.name] = {"pid": 0, "port": ports.get(spec.name), "health": spec.health_url}
    state.save()

    def bring_up() -> None:
        try:
            if not supervisor.wait_all_up(names=[s.name for s in engines]):
                raise RuntimeError(f"engines not up: {supervisor.not_up()}")
            state.phase = "preparing"
            state.save()
            prepare_store(layout, settings, supervisor.say)
            state.phase = "launching"
            state.save()
            supervisor.launch([s.name for s in served])
            if not supervisor.wait_all_up():
                raise RuntimeError(f"not up: {supervisor.not_up()}")
            _wait_balanced(layout.run_dir / "haproxy" / STATS_SOCKET)
            state.phase = "up"
            supervisor.say(f"cluster is up: {layout.public_url}")
        except Exception as error:  # reported through the state file and the log
            state.phase, state.error = "failed", str(error)
            supervisor.say(f"cluster failed to start: {error}")
        state.save()

    threading.Thread(target=bring_up, daemon=True).start()
    from smartmkt.privacy.retention import schedule_retention  # once per cluster, not per replica

    schedule_retention(
        settings, lambda: _wait_phase(state), lambda line: print(f"smartmkt | {line}", flush=True)
    )
    code = supervisor.serve(first=[s.name for s in engines])
    state.phase = "stopped"
    state.save()
    return code


def busy_ports(layout: Layout) -> dict[str, int]:
    """The services whose port something else already listens on (another cluster, a system
    PostgreSQL or RabbitMQ): starting there would fail, or worse, talk to a stranger."""
    ports = _ports(layout) | {"haproxy (actions)": layout.actions_port}
    ports |= {"rabbitmq (erlang)": layout.engines.rabbitmq_port + 1}
    return {name: port for name, port in ports.items() if not _bindable(port)}


def _wait_phase(state: ClusterState, timeout: float = UP_TIMEOUT_S) -> bool:
    """Until the cluster is up (True) or failed (False)."""
    deadline = time.monotonic() + timeout
    while state.phase not in ("up", "failed", "stopped") and time.monotonic() < deadline:
        time.sleep(1.0)
    return state.phase == "up"


def _wait_balanced(stats_socket: Path, timeout: float = 60.0) -> None:
    """Until HAProxy itself sends traffic to every replica (its checks pass twice in a row,
    a second or two after a replica starts answering): the cluster is up only then."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            down = [name for name, up in servers_up(stats_socket).items() if not up]
        except OSError as error:
            down = [f"stats socket: {error}"]
        if not down:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"HAProxy does not send traffic to {', '.join(down)}")
        time.sleep(0.5)


def _ports(layout: Layout) -> dict[str, int]:
    ports = {"haproxy": layout.public_port, "consumer": layout.consumer_port}
    engines = layout.engines
    ports |= {"postgres": engines.postgres_port, "redis": engines.redis_port}
    ports |= {"rabbitmq": engines.rabbitmq_port, "epmd": engines.epmd_port}
    for number in range(1, layout.replicas + 1):
        ports[f"app{number}"] = layout.app_ports[number - 1]
        ports[f"actions{number}"] = layout.action_ports[number - 1]
        ports[f"rasa{number}"] = layout.rasa_ports[number - 1]
    return ports


def start_in_background(layout: Layout, log: Path, base: Settings | None = None) -> subprocess.Popen[bytes]:
    """``smartmkt cluster serve`` for ``layout`` as a process of its own session (it outlives the
    command that started it), logging to ``log``; with ``base``'s settings (default: this
    process's environment)."""
    command = [sys.executable, "-m", "smartmkt.cli.main", "cluster", "serve"]
    command += ["--run-dir", str(layout.run_dir), "--replicas", str(layout.replicas)]
    command += ["--layout-json", json.dumps(layout_to_dict(layout))]
    env = {**os.environ, **settings_env(base)} if base is not None else None
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    ClusterState(layout.run_dir / STATE_FILE, phase="starting").save()  # no earlier run's state is read
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )


class ClusterNotUp(RuntimeError):
    """The cluster failed to start, its supervisor ended, or it was not up in time."""


def wait_until_up(
    run_dir: Path,
    proc: subprocess.Popen[bytes],
    timeout: float,
    on_phase: Callable[[str], None] | None = None,
) -> None:
    """Until the cluster that ``proc`` (its supervisor) runs in ``run_dir`` is up; ``on_phase``
    hears of each phase it enters. Raises ClusterNotUp with the reason otherwise."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        state = ClusterState.read(run_dir)
        if state is not None and state.phase == "up":
            return
        if state is not None and state.phase == "failed":
            raise ClusterNotUp(f"the cluster did not start: {state.error}")
        if proc.poll() is not None:
            raise ClusterNotUp(f"the cluster's supervisor exited with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise ClusterNotUp(f"the cluster is not up within {timeout:g} s")
        if state is not None and state.phase != last and on_phase is not None:
            on_phase(state.phase)
        last = state.phase if state is not None else last
        time.sleep(0.5)


def layout_to_dict(layout: Layout) -> dict[str, Any]:
    engines = layout.engines
    return {
        "public_port": layout.public_port,
        "actions_port": layout.actions_port,
        "app_ports": list(layout.app_ports),
        "action_ports": list(layout.action_ports),
        "rasa_ports": list(layout.rasa_ports),
        "consumer_port": layout.consumer_port,
        "engines": [engines.postgres_port, engines.redis_port, engines.rabbitmq_port],
    }


def layout_from_dict(run_dir: Path, data: dict[str, Any]) -> Layout:
    postgres, redis, rabbitmq = data["engines"]
    return Layout(
        run_dir,
        data["public_port"],
        data["actions_port"],
        tuple(data["app_ports"]),
        tuple(data["action_ports"]),
        tuple(data["rasa_ports"]),
        data["consumer_port"],
        Engines(run_dir, postgres, redis, rabbitmq),
    )


def stop(state: ClusterState, timeout: float = 60.0) -> list[str]:
    """SIGTERM to the supervisor (it stops every service), then SIGKILL to whatever of the
    recorded process groups is left after ``timeout`` seconds. Returns what had to be killed."""
    import signal

    if state.supervisor_alive():
        os.kill(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while state.supervisor_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
    killed = []
    for name, service in state.services.items():
        pid = int(service.get("pid") or 0)
        if alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed.append(name)
    if state.supervisor_alive():
        os.kill(state.pid, signal.SIGKILL)
        killed.append("supervisor")
    return killed


@dataclass
class RunningCluster:
    """A cluster started by :func:`running_cluster`: its layout, settings and state."""

    layout: Layout
    settings: Settings
    log: Path

    @property
    def public_url(self) -> str:
        return self.layout.public_url

    @property
    def rest_url(self) -> str:
        return f"{self.layout.public_url}/webhooks/rest/webhook"

    def state(self) -> ClusterState:
        state = ClusterState.read(self.layout.run_dir)
        if state is None:
            raise RuntimeError(f"no cluster state in {self.layout.run_dir}")
        return state

    def pid(self, service: str) -> int:
        return int(self.state().services[service]["pid"])


@contextmanager
def running_cluster(
    layout: Layout, base: Settings, timeout: float = UP_TIMEOUT_S
) -> Iterator[RunningCluster]:
    """The real `smartmkt cluster serve` for ``layout`` in the background (tests, benchmarks);
    raises if it is not up within ``timeout`` seconds, and stops it on the way out."""
    log = layout.run_dir / "cluster.log"
    proc = start_in_background(layout, log, base)
    try:
        try:
            wait_until_up(layout.run_dir, proc, timeout)
        except ClusterNotUp as error:
            raise RuntimeError(f"{error}; see {log}") from None
        yield RunningCluster(layout, layout.settings(base), log)
    finally:
        proc.terminate()  # the supervisor stops every service; our child, so we reap it here
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        state = ClusterState.read(layout.run_dir)
        if state is not None:
            stop(state)  # whatever process group is left
