"""Write HAProxy's configuration into docker-compose.yml (its ``configs.haproxy.content``) from
smartmkt.runtime.cluster.compose_balancer, the launcher's own routes and checks:
``.venv/bin/python tools/compose_haproxy.py``. tests/test_config.py fails until it is run after
a change to the balancer."""

from __future__ import annotations

from pathlib import Path

from smartmkt.runtime.cluster import compose_balancer

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"
HEAD = "configs:\n  haproxy:\n    content: |\n"


def main() -> None:
    text = COMPOSE.read_text()
    start = text.index(HEAD) + len(HEAD)
    end = text.index("\nvolumes:", start)
    content = "".join(f"      {line}\n" for line in compose_balancer().config().splitlines())
    COMPOSE.write_text(text[:start] + content + text[end:])


if __name__ == "__main__":
    main()
