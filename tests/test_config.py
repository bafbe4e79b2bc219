"""Configuration agrees across the places that must agree."""

import re
from pathlib import Path

import yaml

from smartmkt.runtime.processes import service_env
from smartmkt.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
ENDPOINT_VARS = set(re.findall(r"\$\{(\w+)\}", (ROOT / "bot" / "endpoints.yml").read_text()))


def test_endpoints_variables_are_all_provided_by_the_supervisor() -> None:
    assert {"SMARTMKT_NLU_URL", "SMARTMKT_ACTION_URL"} <= ENDPOINT_VARS
    env = service_env(get_settings())
    assert set(env) >= ENDPOINT_VARS
    assert env["SMARTMKT_NLU_URL"].startswith("http://127.0.0.1:")


def test_docker_compose_describes_the_same_services() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert {"postgres", "app", "actions", "rasa"} <= set(compose["services"])
    env = compose["x-smartmkt-env"]
    assert set(env) >= ENDPOINT_VARS
    assert env["SMARTMKT_DATABASE_URL"].startswith("postgresql")


def test_domain_lists_exactly_the_specified_intents_and_entities() -> None:
    domain = yaml.safe_load((ROOT / "bot" / "domain.yml").read_text())
    assert len(domain["intents"]) == 18
    entities = {next(iter(e)) if isinstance(e, dict) else e for e in domain["entities"]}
    assert entities == {"category", "product", "price", "year", "recipient"}
