"""Shared fixtures. Tests use the real components: a real SQLite store loaded with the real demo
data, the trained models from models/ (``make test`` trains them first), real FAISS, and for the
end-to-end tests the real Rasa server, action server and app on free ports."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from smartmkt.runtime.engines import Engines
from smartmkt.runtime.stack import RunningStack, free_port, running_services, running_stack, with_free_ports
from smartmkt.settings import Settings, get_settings
from smartmkt.store import model_registry
from smartmkt.store.db import make_engine

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return get_settings()


@pytest.fixture
def private_var_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A var/ of this test's own: what the code under test caches there (the recommender bench's
    RecBole answers) stays out of the project's var/, which the bench's real runs reuse."""
    var = tmp_path / "var"
    monkeypatch.setenv("SMARTMKT_VAR_DIR", str(var))
    get_settings.cache_clear()  # type: ignore[attr-defined]
    try:
        yield var
    finally:
        monkeypatch.delenv("SMARTMKT_VAR_DIR")
        get_settings.cache_clear()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def demo_db_template(tmp_path_factory: pytest.TempPathFactory, base_settings: Settings) -> Path:
    """A migrated store with the demo data, built once per test session."""
    from smartmkt.data.demo import load_demo
    from smartmkt.store.migrate import upgrade

    path = tmp_path_factory.mktemp("demo") / "smartmkt.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    load_demo(engine, base_settings.var_dir / "cache" / "wheels")
    engine.dispose()
    return path


@pytest.fixture
def demo_db(tmp_path: Path, demo_db_template: Path) -> Path:
    """A private copy of the demo store for one test (tests may write offers and orders)."""
    target = tmp_path / "smartmkt.db"
    shutil.copy(demo_db_template, target)
    return target


@pytest.fixture
def demo_engine(demo_db: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{demo_db}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def served_recommender(base_settings: Settings):  # type: ignore[no-untyped-def]
    from smartmkt.recommend.recommender import Recommender

    return Recommender.load(model_registry.served_path(base_settings.models_dir, "recommender"))


@pytest.fixture(scope="session")
def served_parser(base_settings: Settings):  # type: ignore[no-untyped-def]
    from smartmkt.nlu.parser import NLUParser

    return NLUParser(
        model_registry.served_path(base_settings.models_dir, "nlu"),
        base_settings.nlu_fallback_threshold,
        base_settings.nlu_max_chars,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated store on each supported engine.

    PostgreSQL comes from SMARTMKT_TEST_POSTGRES_URL, which `make test` sets after starting a
    throwaway server (.ci/postgres); without it the PostgreSQL cases fail, they never skip.
    """
    import os
    import uuid

    from smartmkt.store.migrate import upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        upgrade(url)
        yield url
        return
    admin_url = os.environ.get("SMARTMKT_TEST_POSTGRES_URL")
    if not admin_url:
        pytest.fail(
            "SMARTMKT_TEST_POSTGRES_URL is not set: run `make test`, or start one with .ci/postgres start"
        )
    import sqlalchemy as sa

    name = f"smartmkt_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    try:
        yield url
    finally:
        from smartmkt.store.db import get_engine

        get_engine.cache_clear()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- the running product, shared by the end-to-end modules (chat, voice) -----------------------
def start_stack(
    tmp_path_factory: pytest.TempPathFactory,
    demo_db_template: Path,
    base_settings: Settings,
    name: str,
    **update: object,
) -> Iterator[RunningStack]:
    """The three services on free ports against a private copy of the demo store, with
    ``update`` applied to the settings; their logs in test-artifacts/<name>-logs."""
    tmp = tmp_path_factory.mktemp(name)
    shutil.copy(demo_db_template, tmp / "smartmkt.db")
    # Rasa's lock store in a Redis of the stack's own, as several replicas have it
    redis = Engines(tmp / "engines", free_port(), free_port(), free_port())
    settings = with_free_ports(
        base_settings.model_copy(
            # Rasa's tracker store defaults to the same database (its events table beside ours)
            # the demo page's token endpoint on, as `make run` has it (production leaves it off)
            update={
                "database_url": f"sqlite:///{tmp / 'smartmkt.db'}",
                "demo_tokens": True,
                "redis_url": redis.redis_url,
                **update,
            }
        )
    )
    artifacts = Path(__file__).resolve().parent.parent / "test-artifacts" / f"{name}-logs"
    if artifacts.exists():
        shutil.rmtree(artifacts)
    with (
        running_services([redis.redis()], artifacts / "engines"),
        running_stack(settings, artifacts) as running,
    ):
        yield running
        assert all(running.alive().values()), running.alive()


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, demo_db_template: Path, base_settings: Settings
) -> Iterator[RunningStack]:
    yield from start_stack(tmp_path_factory, demo_db_template, base_settings, "e2e")


@pytest.fixture(scope="session")
def web_stack(
    tmp_path_factory: pytest.TempPathFactory, demo_db_template: Path, base_settings: Settings
) -> Iterator[RunningStack]:
    """The browser tests' own running product: they make offers and orders as customer 42, whom
    the REST end-to-end tests also talk as (and offers are capped per customer and day). Its one
    allowed other site (SMARTMKT_ALLOWED_ORIGINS) is where tests/browser/test_stock_webchat.py
    serves a shop's page from."""
    shop_site = f"http://127.0.0.1:{free_port()}"
    yield from start_stack(
        tmp_path_factory, demo_db_template, base_settings, "browser", allowed_origins=shop_site
    )


@pytest.fixture(scope="session")
def db(stack: RunningStack):  # type: ignore[no-untyped-def]
    engine = make_engine(stack.settings.resolved_database_url)
    yield engine
    engine.dispose()


# --- speech --------------------------------------------------------------------------------------
def espeak_wav(path: Path, text: str, voice: str = "en-us", speed: int = 160) -> Path:
    """``text`` spoken by espeak-ng (Debian package) into a WAV file."""
    from smartmkt.speech.tts import wav_file

    return wav_file(path, text, voice, speed)


# --- a user's new shell ---------------------------------------------------------------------------
def new_shell_env(var_dir: Path) -> dict[str, str]:
    """A new shell's environment at the repository root, as a user pastes commands into it: no
    virtual environment on PATH (so `smartmkt` alone is not found), the product's settings from
    ``var_dir`` (so a token is signed with the running product's secret)."""
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    env["SMARTMKT_VAR_DIR"] = str(var_dir)
    return env


# --- `smartmkt run` as a user starts it ---------------------------------------------------------
@dataclass
class RunningCli:
    """`smartmkt run --no-train` in a process of its own, its output (all services') in one log."""

    proc: subprocess.Popen[bytes]
    ports: dict[str, int]
    log_path: Path
    var_dir: Path

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['rasa']}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def secret(self) -> str:
        return (self.var_dir / "secrets" / "customer_token_secret").read_text()


@contextmanager
def smartmkt_run(
    tmp_path: Path, env: dict[str, str], drop: tuple[str, ...] = (), timeout: float = 300
) -> Iterator[RunningCli]:
    """Start `smartmkt run --no-train` on free ports with ``env`` over this environment, less the
    variables in ``drop`` (and as a clean CI environment: no COLUMNS; secrets made on first start
    under ``tmp_path``/var unless ``env`` says otherwise); yield once it prints "smartmkt is
    running"; Ctrl-C (SIGINT) it at the end."""
    ports = {"app": free_port(), "actions": free_port(), "rasa": free_port()}
    full_env = {
        **os.environ,
        "SMARTMKT_APP_PORT": str(ports["app"]),
        "SMARTMKT_ACTION_PORT": str(ports["actions"]),
        "SMARTMKT_RASA_PORT": str(ports["rasa"]),
        "SMARTMKT_VAR_DIR": str(tmp_path / "var"),
        **env,
    }
    for name in ("SMARTMKT_CUSTOMER_TOKEN_SECRET", "COLUMNS", *drop):
        full_env.pop(name, None)
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "smartmkt"), "run", "--no-train"],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = RunningCli(proc, ports, log_path, Path(full_env["SMARTMKT_VAR_DIR"]))
    try:
        deadline = time.monotonic() + timeout
        while "smartmkt is running" not in running.log():
            assert proc.poll() is None, running.log()[-3000:]
            assert time.monotonic() < deadline, "services did not come up:\n" + running.log()[-3000:]
            time.sleep(1)
        yield running
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=90)


# --- the browser tests' browser -------------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"  # Debian's (never a browser Playwright downloads)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def pw() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(pw: Any) -> Iterator[Any]:
    """Headless chromium, one per test module (tests/browser)."""
    launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


def chat_turn(page: Any, box: str, text: str, timeout_ms: int = 60_000) -> None:
    """Types ``text`` into the message box ``box`` (a CSS selector; Playwright's pierces shadow
    roots), sends it with Enter and waits until the bot's answer is on the page."""
    from playwright.sync_api import expect

    before = page.locator(".from-bot").count()
    page.locator(box).fill(text)
    page.locator(box).press("Enter")
    expect(page.locator(".from-customer .msg-text").last).to_have_text(text)
    expect(page.locator(".from-bot")).to_have_count(before + 1, timeout=timeout_ms)


def browser_hearing(pw: Any, folder: Path, said: str) -> Any:
    """Chromium whose fake microphone plays ``said`` once (espeak-ng, 0.3 s of silence before and
    2 s after, so the whole request is recorded), the microphone allowed without a prompt."""
    from smartmkt.speech.tts import wav_file

    spoken = wav_file(folder / "spoken.wav", said)
    padded = folder / "ask.wav"
    subprocess.run(["sox", "-R", str(spoken), "-r", "48000", str(padded), "pad", "0.3", "2"], check=True)
    return pw.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={padded}%noloop",
        ],
    )


def in_bot_env(script: str, *args: str, timeout: float = 180) -> Any:
    """Runs ``script`` in the bot environment (python-socketio's client lives there) and returns
    the JSON it printed last; a failed run fails the test with its stderr."""
    import json

    python = Path(__file__).resolve().parent.parent / ".venv-bot" / "bin" / "python"
    out = subprocess.run(
        [str(python), "-c", script, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def listening_addresses(port: int) -> set[str]:
    """The IPv4 and IPv6 addresses with a socket listening on ``port`` (from /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            if len(raw) == 4:
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found
