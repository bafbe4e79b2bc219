"""Configuration agrees across the places that must agree."""

import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from smartmkt.runtime.cluster import COMPOSE_PORTS, DEFAULT_REPLICAS, Layout, compose_balancer
from smartmkt.runtime.engines import NAMES as ENGINES
from smartmkt.runtime.processes import event_broker_env, lock_store_env, service_env
from smartmkt.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent
ENDPOINT_VARS = set(re.findall(r"\$\{(\w+)\}", (ROOT / "bot" / "endpoints.yml").read_text()))


def test_endpoints_variables_are_all_provided_by_the_supervisor() -> None:
    assert {"SMARTMKT_NLU_URL", "SMARTMKT_ACTION_URL"} <= ENDPOINT_VARS
    env = service_env(get_settings())
    assert set(env) >= ENDPOINT_VARS
    assert env["SMARTMKT_NLU_URL"].startswith("http://127.0.0.1:")


def test_docker_compose_runs_the_cluster_launchers_topology(tmp_path: Path) -> None:
    """docker-compose.yml and `smartmkt cluster up` (smartmkt.runtime.cluster) name the same
    services, replicas, ports and environment, and HAProxy runs the launcher's configuration."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    layout = Layout.fixed(tmp_path)
    served = layout.served_specs(layout.settings(get_settings()))
    launched = {re.sub(r"\d+$", "", name) for name in [*ENGINES, *(s.name for s in served)]}
    launched -= {"epmd"}  # inside the rabbitmq image
    assert launched == {"postgres", "redis", "rabbitmq", "app", "actions", "rasa", "consumer", "haproxy"}
    assert launched <= set(services)
    for name in ("app", "actions", "rasa"):
        assert services[name]["deploy"]["replicas"] == layout.replicas == DEFAULT_REPLICAS
    # ports: HAProxy's public and action ports are the launcher's; each replica's is its command's
    assert services["haproxy"]["ports"] == [f"127.0.0.1:{layout.public_port}:{layout.public_port}"]
    assert compose["configs"]["haproxy"]["content"] == compose_balancer(layout.replicas).config(), (
        "docker-compose.yml runs another HAProxy configuration: .venv/bin/python tools/compose_haproxy.py"
    )
    for name, port in COMPOSE_PORTS.items():
        assert str(port) in " ".join(services[name]["command"]), name
    # environment: what endpoints.yml reads and every setting the launcher changes, with values
    # that say the same (the lock store and the broker as the launcher derives them)
    env = compose["x-smartmkt-env"]
    changed = {f"SMARTMKT_{name.upper()}" for name in layout.shared_settings()}
    assert set(env) >= ENDPOINT_VARS | changed | {"SMARTMKT_CUSTOMER_TOKEN_SECRET"}
    assert env["SMARTMKT_DATABASE_URL"].startswith("postgresql")
    derived = Settings(redis_url=env["SMARTMKT_REDIS_URL"], amqp_url=env["SMARTMKT_AMQP_URL"])
    assert lock_store_env(derived).items() <= env.items()
    assert event_broker_env(derived).items() <= env.items()
    assert env["SMARTMKT_ACTION_URL"] == env["SMARTMKT_ACTION_ENDPOINT_URL"]
    assert env["SMARTMKT_ACTION_URL"].endswith(f":{layout.actions_port}/webhook")
    assert env["SMARTMKT_NLU_URL"].endswith(f":{layout.public_port}")
    for name in ("app", "actions", "rasa", "consumer"):
        assert services[name]["environment"] == env, name


def test_domain_lists_exactly_the_specified_intents_and_entities() -> None:
    domain = yaml.safe_load((ROOT / "bot" / "domain.yml").read_text())
    assert len(domain["intents"]) == 18
    entities = {next(iter(e)) if isinstance(e, dict) else e for e in domain["entities"]}
    assert entities == {"category", "product", "price", "year", "recipient"}


def test_cluster_up_refuses_a_port_something_listens_on(tmp_path: Path) -> None:
    """`cluster up` names the ports in use before starting anything (busy_ports); a port a
    cluster just left (connections in TIME_WAIT) is free again, as servers see it."""
    import socket

    from smartmkt.runtime.cluster import busy_ports

    layout = Layout.on_free_ports(tmp_path)
    assert busy_ports(layout) == {}
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", layout.public_port))
        holder.listen()
        assert busy_ports(layout) == {"haproxy": layout.public_port}


def test_allowed_origins_are_origins_and_the_products_own_pages_always_count() -> None:
    settings = Settings(app_port=8123, allowed_origins=" https://shop.example ,http://127.0.0.1:9000,")
    assert settings.resolved_allowed_origins == [
        "http://127.0.0.1:8123",
        "http://localhost:8123",
        "https://shop.example",
        "http://127.0.0.1:9000",
    ]
    cluster = Settings(app_port=8101, chat_socket_url="http://127.0.0.1:8080")  # pages via HAProxy
    assert cluster.resolved_allowed_origins[-1] == "http://127.0.0.1:8080"
    for wrong in ("shop.example", "https://shop.example/", "https://shop.example/chat", "ftp://shop.example"):
        with pytest.raises(ValidationError, match="is not an origin; write scheme://host"):
            Settings(allowed_origins=wrong)


def test_the_shops_currency_is_an_iso_code() -> None:
    assert Settings().currency == "USD"
    assert Settings(currency=" gbp").currency == "GBP"
    for bad in ("pounds", "£", "US", ""):
        with pytest.raises(ValidationError, match="three-letter ISO 4217 code"):
            Settings(currency=bad)
