"""The stack launcher starts some of the services when asked (the console bench needs the app
alone): those run and answer, the others are never started."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from smartmkt.runtime.stack import running_stack, with_free_ports
from smartmkt.settings import Settings
from smartmkt.store.migrate import upgrade


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.e2e
def test_a_subset_starts_only_those_services(tmp_path: Path, base_settings: Settings) -> None:
    url = f"sqlite:///{tmp_path / 'smartmkt.db'}"
    upgrade(url)
    settings = with_free_ports(base_settings.model_copy(update={"database_url": url}))
    with running_stack(settings, tmp_path / "logs", services=["app"]) as stack:
        assert set(stack.processes) == set(stack.specs) == {"app"}
        assert stack.alive() == {"app": True}
        assert httpx.get(f"{settings.app_url}/health", timeout=10).status_code == 200
        assert not listening(settings.action_port)
        assert not listening(settings.rasa_port)
        assert sorted(p.name for p in stack.log_dir.iterdir()) == ["app.log"]
    assert stack.processes["app"].poll() is not None


def test_an_unknown_service_starts_nothing(tmp_path: Path, base_settings: Settings) -> None:
    with (
        pytest.raises(ValueError, match="no such service: web"),
        running_stack(with_free_ports(base_settings), tmp_path / "logs", services=["app", "web"]),
    ):
        pass
    assert not (tmp_path / "logs").exists()
