"""HAProxy in front of several replicas: its configuration, written from the replicas' ports, and
its process as a ServiceSpec (Debian's haproxy in the foreground, on loopback).

One public port carries everything a browser or a shop sends: Rasa's socket.io and REST webhooks
go to the Rasa replicas, the rest (pages, /chat, /voice, the console, /model/parse) to the app
replicas. A second port takes the Rasa replicas' calls to the action servers. Every replica is
health-checked (``GET /health`` every second; out after 2 failures, back after 2 successes), and a
request whose connection is refused is sent to another replica (``retries`` with
``option redispatch 1``). An action call whose server died before answering is sent again to
another action server (``retry-on``): the actions are safe to run twice (an offer decided again
reuses the open offer; bot/replicas.py makes Rasa's REST messages safe to send twice by id).
socket.io clients stay on the Rasa replica that holds their session (a cookie HAProxy inserts),
since socket.io's polling transport keeps its session in one process.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from smartmkt.runtime.processes import ServiceSpec

HAPROXY = "/usr/sbin/haproxy"
HEALTH_PATH = "/haproxy-health"  # answered by HAProxy itself: the balancer is up
STATS_SOCKET = "haproxy.sock"  # in the folder of Balancer.spec


@dataclass(frozen=True)
class Backend:
    """A pool of replicas of one service."""

    name: str
    ports: tuple[int, ...]
    health_path: str = "/health"
    sticky: bool = False  # keep a client on one replica (socket.io sessions)
    # in docker-compose: the replicas are ``replicas`` addresses of one DNS name (Docker's
    # resolver), each on ``ports[0]``, instead of one port each on this host
    dns_name: str = ""
    replicas: int = 0
    # requests sent again to another replica when the one they reached died before answering
    # (HAProxy's layer-7 retries): only for calls that are safe to run twice
    retry_on: str = ""


@dataclass(frozen=True)
class Balancer:
    """HAProxy's ports and the pools behind them. ``routes`` sends a path prefix to a pool on
    the public port; ``default`` takes the rest; ``internal`` pools get a port of their own."""

    public_port: int
    default: Backend
    routes: dict[str, Backend] = field(default_factory=dict)
    internal: dict[int, Backend] = field(default_factory=dict)
    host: str = "127.0.0.1"
    resolver: str = ""  # a DNS server for backends named by dns_name (Docker's: 127.0.0.11:53)
    stats_socket: Path | None = None  # HAProxy's runtime API (read only): requests per replica
    access_log: bool = False  # one line per request on HAProxy's output (SMARTMKT_HAPROXY_ACCESS_LOG)

    def backends(self) -> list[Backend]:
        found = {b.name: b for b in [self.default, *self.routes.values(), *self.internal.values()]}
        return list(found.values())

    def config(self) -> str:
        """The whole haproxy.cfg."""
        lines = [
            "global",
            "  maxconn 4096",
            "  tune.bufsize 65536",  # a request up to 64 KiB is kept for a layer-7 retry
            *(["  log stdout format raw local0"] if self.access_log else []),
            *([f"  stats socket {self.stats_socket} mode 600 level user"] if self.stats_socket else []),
            *(
                ["resolvers dns", f"  nameserver dns1 {self.resolver}", "  hold valid 10s"]
                if self.resolver
                else []
            ),
            "defaults",
            "  mode http",
            *(["  log global", "  option httplog"] if self.access_log else []),
            "  timeout connect 2s",
            "  timeout client 120s",
            "  timeout server 120s",
            "  timeout tunnel 1h",  # websockets
            "  timeout http-keep-alive 10s",
            "  retries 3",
            "  option redispatch 1",  # every retry goes to another replica
            "  option forwardfor",
            "  default-server inter 1s fall 2 rise 2",
            "frontend public",
            f"  bind {self.host}:{self.public_port}",
            f"  monitor-uri {HEALTH_PATH}",
        ]
        for index, (prefix, backend) in enumerate(self.routes.items(), start=1):
            acl = f"route{index}_{backend.name}"
            lines += [f"  acl {acl} path_beg {prefix}", f"  use_backend {backend.name} if {acl}"]
        lines.append(f"  default_backend {self.default.name}")
        for port, backend in self.internal.items():
            lines += [
                f"frontend {backend.name}_in",
                f"  bind {self.host}:{port}",
                f"  default_backend {backend.name}",
            ]
        for backend in self.backends():
            lines += _backend_lines(backend, self.host)
        return "\n".join(lines) + "\n"

    def spec(self, folder: Path) -> ServiceSpec:
        """HAProxy in the foreground (``-db``) with this configuration, written into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "haproxy.cfg"
        config.write_text(dataclasses.replace(self, stats_socket=folder / STATS_SOCKET).config())
        health = f"http://{self.host}:{self.public_port}{HEALTH_PATH}"
        return ServiceSpec("haproxy", [HAPROXY, "-db", "-f", str(config)], folder, dict(os.environ), health)


def _backend_lines(backend: Backend, host: str) -> list[str]:
    lines = [
        f"backend {backend.name}",
        "  balance roundrobin",
        f"  option httpchk GET {backend.health_path}",
        "  http-check expect status 200",
        # a request is sent again only if HAProxy kept all of it: its body waits in the buffer
        *([f"  retry-on {backend.retry_on}", "  option http-buffer-request"] if backend.retry_on else []),
    ]
    if backend.dns_name:  # one cookie value per address: HAProxy derives it (dynamic cookies)
        if backend.sticky:
            lines.append(f"  cookie SMARTMKT_{backend.name.upper()} insert indirect nocache httponly dynamic")
            lines.append(f"  dynamic-cookie-key smartmkt-{backend.name}")
        target = f"{backend.dns_name}:{backend.ports[0]}"
        template = f"  server-template {backend.name} 1-{backend.replicas} {target}"
        lines.append(f"{template} check resolvers dns init-addr none")
        return lines
    if backend.sticky:
        lines.append(f"  cookie SMARTMKT_{backend.name.upper()} insert indirect nocache httponly")
    for index, port in enumerate(backend.ports, start=1):
        cookie = f" cookie {backend.name}{index}" if backend.sticky else ""
        lines.append(f"  server {backend.name}{index} {host}:{port} check{cookie}")
    return lines


def requests_per_server(stats_socket: Path) -> dict[str, int]:
    """Requests each replica has been sent (``backend/server`` -> HAProxy's ``stot``)."""
    return {name: int(row["stot"] or 0) for name, row in _servers(stats_socket).items()}


def servers_up(stats_socket: Path) -> dict[str, bool]:
    """Whether HAProxy sends traffic to each replica (``backend/server`` -> its checks passed)."""
    return {name: row["status"].startswith("UP") for name, row in _servers(stats_socket).items()}


def _servers(stats_socket: Path) -> dict[str, dict[str, str]]:
    """Each replica's row of HAProxy's ``show stat``, read from its stats socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(5)
        conn.connect(str(stats_socket))
        conn.sendall(b"show stat\n")
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    lines = b"".join(chunks).decode().lstrip("# ").splitlines()
    rows = csv.DictReader(line for line in lines if line)
    return {
        f"{row['pxname']}/{row['svname']}": row
        for row in rows
        if row["svname"] not in ("FRONTEND", "BACKEND")
    }
