"""The engines several replicas share, as plain processes on loopback: PostgreSQL, Redis and
RabbitMQ from their Debian packages, each started in the foreground in its own folder under a run
directory, so the supervisor (or a test) starts, health-checks and stops them like any service.

Each engine's health check is a URL whose scheme says how ``processes.healthy`` probes it.
Nothing listens beyond 127.0.0.1, the Erlang distribution and its port mapper (epmd) included.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from smartmkt.runtime.processes import ServiceSpec

HOST = "127.0.0.1"

# Debian package -> a file it installs that the engine needs (what `cluster up` checks).
PACKAGES = {
    "postgresql": "/usr/lib/postgresql",
    "redis-server": "/usr/bin/redis-server",
    "rabbitmq-server": "/usr/lib/rabbitmq/bin/rabbitmq-server",
    "haproxy": "/usr/sbin/haproxy",
}


NAMES = ("postgres", "redis", "epmd", "rabbitmq")  # the services Engines.specs starts, in order


class EngineError(RuntimeError):
    """An engine that cannot be prepared (its package missing, its folder unusable)."""


def missing_packages() -> list[str]:
    """The Debian packages of the engines that are not installed here."""
    return [package for package, path in PACKAGES.items() if not Path(path).exists()]


# --- the engines ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Engines:
    """Where the shared engines run: one folder each under ``run_dir``, one port each."""

    run_dir: Path
    postgres_port: int
    redis_port: int
    rabbitmq_port: int

    @property
    def database_url(self) -> str:
        return f"postgresql+psycopg://smartmkt@{HOST}:{self.postgres_port}/smartmkt"

    @property
    def redis_url(self) -> str:
        return f"redis://{HOST}:{self.redis_port}/0"

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@{HOST}:{self.rabbitmq_port}/%2F"

    @property
    def epmd_port(self) -> int:
        return self.rabbitmq_port + 2  # the distribution listens on the port after AMQP's

    def specs(self) -> list[ServiceSpec]:
        """PostgreSQL, Redis and RabbitMQ (with its port mapper), each prepared in its folder."""
        return [self.postgres(), self.redis(), self.epmd(), self.rabbitmq()]

    def epmd(self) -> ServiceSpec:
        """Erlang's port mapper for the RabbitMQ node, in the foreground (stopped with the rest)."""
        command = ["epmd", "-address", HOST, "-port", str(self.epmd_port)]
        return ServiceSpec(
            "epmd", command, self._folder("rabbitmq"), dict(os.environ), f"epmd://{HOST}:{self.epmd_port}"
        )

    def postgres(self) -> ServiceSpec:
        folder = self._folder("postgres")
        data = folder / "data"
        binaries = _postgres_binaries()
        if (
            os.geteuid() == 0
            and subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(folder)]).returncode
        ):
            raise EngineError(
                f"{folder}: the postgres user cannot write there (a parent folder is private to root); "
                "choose a run directory it can reach, e.g. under /tmp"
            )
        if not (data / "PG_VERSION").exists():
            _as_postgres(
                folder,
                [str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "smartmkt", "-E", "UTF8"],
            )
            with (data / "postgresql.conf").open("a") as conf:
                conf.write(f"listen_addresses = '{HOST}'\nport = {self.postgres_port}\n")
                conf.write(f"unix_socket_directories = '{folder}'\nfsync = off\nmax_connections = 200\n")
        command = [str(binaries / "postgres"), "-D", str(data)]
        user = "postgres" if os.geteuid() == 0 else None
        return ServiceSpec(
            "postgres", command, folder, dict(os.environ), self._database_health(), user, signal.SIGINT
        )

    def _database_health(self) -> str:
        # the maintenance database exists from initdb on; smartmkt's own is created by `cluster up`
        return f"postgresql://smartmkt@{HOST}:{self.postgres_port}/postgres"

    def redis(self) -> ServiceSpec:
        folder = self._folder("redis")
        command = [
            PACKAGES["redis-server"],
            "--bind", HOST, "--port", str(self.redis_port), "--dir", str(folder),
            "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no",
        ]  # fmt: skip
        return ServiceSpec("redis", command, folder, dict(os.environ), f"redis://{HOST}:{self.redis_port}")

    def rabbitmq(self) -> ServiceSpec:
        folder = self._folder("rabbitmq")
        (folder / "enabled_plugins").write_text("[].\n")
        (folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {HOST}:{self.rabbitmq_port}\nloopback_users.guest = true\n"
        )
        node = f"smartmkt{self.rabbitmq_port}"
        env = {
            **os.environ,
            "HOME": str(folder),  # the Erlang cookie lives here
            "RABBITMQ_NODENAME": f"{node}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(self.rabbitmq_port),
            "RABBITMQ_DIST_PORT": str(self.rabbitmq_port + 1),
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"),
            # Erlang's distribution and port mapper on loopback; the mapper is epmd_spec's, not
            # the daemon RabbitMQ would start (it would outlive the node, on every interface)
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
                "-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false"
            ),
            "ERL_EPMD_ADDRESS": HOST,
            "ERL_EPMD_PORT": str(self.epmd_port),
        }
        command = [PACKAGES["rabbitmq-server"]]
        return ServiceSpec("rabbitmq", command, folder, env, f"amqp://{HOST}:{self.rabbitmq_port}")

    def _folder(self, name: str) -> Path:
        folder = self.run_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0 and name == "postgres":
            shutil.chown(folder, "postgres")
        return folder


def _postgres_binaries() -> Path:
    found = sorted(Path(PACKAGES["postgresql"]).glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise EngineError(
            "PostgreSQL is not installed: apt-get install postgresql (or `smartmkt cluster up`)"
        )
    return found[-1].parent


def _as_postgres(folder: Path, command: list[str]) -> None:
    """initdb refuses root: it runs as the postgres user, which then owns the data."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    if done.returncode != 0:
        raise EngineError(f"initdb failed in {folder}: {done.stderr.strip() or done.stdout.strip()}")
