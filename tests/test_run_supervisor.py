"""`smartmkt run` as a user runs it: one supervisor starts all three services, prints the URLs,
the bot answers, the startup log holds nothing that looks like an error, a crashed or wedged
service is restarted, and Ctrl-C (SIGINT) stops every process."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import RunningCli, new_shell_env, smartmkt_run

from smartmkt.security.identity import issue_token, new_session_id

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e
UNAVAILABLE = "isn't answering"


def say(
    running: RunningCli, customer: str, session: str, text: str, timeout: float = 60
) -> list[dict[str, object]]:
    response = httpx.post(
        f"{running.rasa_url}/webhooks/rest/webhook",
        json={
            "sender": session,
            "message": text,
            "metadata": {"customer_token": issue_token(running.secret(), customer)},
        },
        timeout=timeout,
    )
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def session_of(running: RunningCli, customer: str) -> str:
    return new_session_id(running.secret(), customer)


def root_pid(running: RunningCli, service: str) -> int:
    """The service's own process, as the supervisor last started it."""
    return int(re.findall(rf"{service} started \(pid (\d+)\)", running.log())[-1])


@pytest.fixture
def running_cli(tmp_path: Path, demo_db: Path) -> Iterator[RunningCli]:
    env = {
        "SMARTMKT_DATABASE_URL": f"sqlite:///{demo_db}",
        "SMARTMKT_TRACKER_DB": str(tmp_path / "conversations.db"),
    }
    with smartmkt_run(tmp_path, env) as running:  # no secrets set: the first start makes them
        yield running


def test_run_starts_everything_and_ctrl_c_stops_it(running_cli: RunningCli) -> None:
    banner = running_cli.log()
    assert running_cli.rasa_url in banner and "curl -s" in banner
    secret_file = running_cli.var_dir / "secrets" / "customer_token_secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    reply = say(running_cli, "42", session_of(running_cli, "42"), "hello")
    assert "Welcome back" in str(reply[0]["text"])  # customer 42, from the signed token
    pasted = run_banner_commands(running_cli)
    assert '"recipient_id"' in pasted and '"transcript"' in pasted  # text and voice both answered
    guest = httpx.post(
        f"{running_cli.rasa_url}/webhooks/rest/webhook", json={"sender": "42", "message": "hello"}, timeout=60
    ).json()
    assert "Welcome back" not in guest[0]["text"]  # the raw id is a guest, not customer 42
    os.killpg(running_cli.proc.pid, signal.SIGINT)
    running_cli.proc.wait(timeout=90)
    time.sleep(1)
    for port in running_cli.ports.values():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)


def run_banner_commands(running: RunningCli) -> str:
    """The commands the banner shows, pasted into a new shell at the repository root: no
    virtual environment on PATH, the same settings as the running product."""
    banner = running.log().split("In a new shell", 1)[1].split("Ctrl-C stops everything", 1)[0]
    commands = "\n".join(line[2:] for line in banner.splitlines() if line.startswith("  "))
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", commands],
        cwd=ROOT,
        env=new_shell_env(running.var_dir),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"{result.stderr}\n--- pasted ---\n{commands}"
    return result.stdout


def test_startup_log_holds_nothing_that_looks_like_an_error(running_cli: RunningCli) -> None:
    """Nothing is wrong, so nothing in the log of a start (and a first turn) reads as an error."""
    say(running_cli, "42", session_of(running_cli, "42"), "recommend me a comedy")
    time.sleep(1)
    suspicious = [
        line
        for line in running_cli.log().splitlines()
        if re.search(r"\bERROR\b|Failed|Traceback|Exception", line)
    ]
    assert suspicious == []
    # every model each process serves was loaded and exercised before it said it was healthy
    assert "models loaded and warmed" in running_cli.log()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc: no psutil needed)."""
    parents: dict[int, int] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat_file.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def serving_workers(root: int) -> list[int]:
    """The processes that serve a service's requests: Sanic's worker processes under the action
    server's parent (multiprocessing children, not its resource tracker), else the service's own
    process (uvicorn and Rasa serve in the process the supervisor started)."""
    workers = [
        p
        for p in descendants(root)
        if "multiprocessing" in cmdline(p) and "resource_tracker" not in cmdline(p)
    ]
    return workers or [root]


def answers_again(running: RunningCli, session: str, limit_s: float) -> float:
    """Seconds until the bot answers ``hello`` in full again (not "isn't answering")."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        try:
            reply = say(running, "42", session, "hello", timeout=30)
        except httpx.HTTPError:
            time.sleep(0.5)
            continue
        texts = " ".join(str(m.get("text", "")) for m in reply)
        if reply and UNAVAILABLE not in texts and "Welcome back" in texts:
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"no full answer within {limit_s:g} s")


@pytest.mark.parametrize("service", ["actions", "app", "rasa"])
def test_a_killed_worker_is_restarted_and_nothing_is_lost(running_cli: RunningCli, service: str) -> None:
    """kill -9 of the process that serves a service's requests (for the action server: its Sanic
    worker, whose parent then kept the port open and answered nothing). The supervisor notices
    (the process exited, or /health stopped answering), restarts the service, the customer's
    next message is answered, and the conversation's state survived (the price question refers
    to the title recommended before the crash)."""
    session = session_of(running_cli, "42")
    shown = say(running_cli, "42", session, "recommend me a comedy")
    custom = next(m["custom"] for m in shown if "custom" in m)
    first_title = custom["products"][0]["title"]  # type: ignore[index]
    root = root_pid(running_cli, service)
    workers = serving_workers(root)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    recovered_s = answers_again(running_cli, session, limit_s=180)
    print(f"{service}: killed {workers} (root {root}); full answers again after {recovered_s:.1f} s")
    assert re.search(rf"{service} (exited with code|stopped answering)", running_cli.log())
    price = say(running_cli, "42", session, "how much is it?")
    assert first_title in " ".join(str(m.get("text", "")) for m in price)
