"""HAProxy in front of replicas (smartmkt/runtime/balancer.py), with Debian's haproxy: requests are
spread over the replicas, routed by path, a replica that dies is taken out without one request
failing, a sticky pool keeps a client on its replica, and the balancer listens on loopback only.

The replicas here are Python's http.server serving a folder with a ``health`` file and a ``who``
file naming the replica: stand-ins for smartmkt's services, which other tests run for real;
what is under test is HAProxy's configuration."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import listening_addresses

from smartmkt.runtime.balancer import HAPROXY, Backend, Balancer
from smartmkt.runtime.processes import ServiceSpec
from smartmkt.runtime.stack import RunningStack, free_port, running_services


def _replica(folder: Path, name: str) -> ServiceSpec:
    """A replica answering GET /health and GET /who (its name), on a free loopback port."""
    root = folder / name
    root.mkdir(parents=True)
    (root / "health").write_text("ok")
    (root / "who").write_text(name)
    (root / "socket.io").mkdir()
    (root / "socket.io" / "who").write_text(name)  # what the Rasa pool's path reaches
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "http.server",
        str(port),
        "--bind",
        "127.0.0.1",
        "--directory",
        str(root),
    ]
    return ServiceSpec(name, command, root, {}, f"http://127.0.0.1:{port}/health")


def _port(spec: ServiceSpec) -> int:
    return int(spec.health_url.rsplit(":", 1)[1].split("/")[0])


@pytest.fixture
def balanced(tmp_path: Path) -> Iterator[tuple[Balancer, RunningStack]]:
    assert Path(HAPROXY).exists(), "make setup installs Debian's haproxy"
    replicas = [_replica(tmp_path, name) for name in ("app1", "app2", "rasa1", "rasa2")]
    ports = {spec.name: _port(spec) for spec in replicas}
    app = Backend("app", (ports["app1"], ports["app2"]))
    rasa = Backend("rasa", (ports["rasa1"], ports["rasa2"]), sticky=True)
    balancer = Balancer(free_port(), app, routes={"/socket.io": rasa, "/webhooks": rasa})
    specs = [*replicas, balancer.spec(tmp_path / "haproxy")]
    with running_services(specs, tmp_path / "logs", timeout=60) as running:
        # both checked up (rise 2 x inter 1 s once each answers; on a loaded machine, CI's first
        # tests right after training, HAProxy's first checks can wait longer than 15 s)
        _wait_for(lambda: _spread(balancer, "/who", 4) == {"app1": 2, "app2": 2}, timeout=45.0)
        yield balancer, running


def _get(balancer: Balancer, path: str, client: httpx.Client | None = None) -> httpx.Response:
    return (client or httpx).get(f"http://127.0.0.1:{balancer.public_port}{path}", timeout=5)


def _spread(balancer: Balancer, path: str, count: int) -> Counter[str]:
    try:
        return Counter(_get(balancer, path).text for _ in range(count))
    except httpx.HTTPError:
        return Counter()


def _wait_for(condition: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("not within the time")


def test_requests_are_spread_and_routed_by_path(balanced: tuple[Balancer, RunningStack]) -> None:
    balancer, _running = balanced
    assert _spread(balancer, "/who", 10) == {"app1": 5, "app2": 5}
    assert _spread(balancer, "/socket.io/who", 10) == {"rasa1": 5, "rasa2": 5}  # no cookie kept
    assert _get(balancer, "/haproxy-health").status_code == 200
    assert listening_addresses(balancer.public_port) == {"127.0.0.1"}


def test_a_dead_replica_is_taken_out_without_a_failed_request(
    balanced: tuple[Balancer, RunningStack],
) -> None:
    balancer, running = balanced
    running.stop("app1", kill=True)
    answers = [_get(balancer, "/who") for _ in range(40)]  # at once, and while checks mark it down
    assert [a.status_code for a in answers] == [200] * 40
    assert Counter(a.text for a in answers[-10:]) == {"app2": 10}


def test_a_sticky_pool_keeps_a_client_on_its_replica(balanced: tuple[Balancer, RunningStack]) -> None:
    balancer, _running = balanced
    for _ in range(2):
        with httpx.Client() as client:  # keeps the cookie HAProxy inserts, as a browser does
            answers = {_get(balancer, "/socket.io/who", client).text for _ in range(6)}
            assert len(answers) == 1 and client.cookies.get("SMARTMKT_RASA") == answers.pop()
    assert "SMARTMKT_APP" not in _get(balancer, "/who").headers.get("set-cookie", "")  # app: none


def test_the_configuration_is_valid_for_haproxy(tmp_path: Path) -> None:
    rasa = Backend("rasa", (5005, 5006), "/", sticky=True)
    balancer = Balancer(
        8080, Backend("app", (8000, 8001)), {"/socket.io": rasa}, {5055: Backend("actions", (1, 2))}
    )
    config = tmp_path / "haproxy.cfg"
    config.write_text(balancer.config())
    checked = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    broken = tmp_path / "broken.cfg"
    broken.write_text(balancer.config().replace("balance roundrobin", "balance nonsense", 1))
    assert subprocess.run([HAPROXY, "-c", "-f", str(broken)], capture_output=True).returncode != 0
