"""`smartmkt run` as a user runs it: one supervisor starts all three services, prints the URLs,
the bot answers, and Ctrl-C (SIGINT) stops every process."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from smartmkt.security.identity import issue_token, new_session_id
from smartmkt.stack import free_port

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e


def test_run_starts_everything_and_ctrl_c_stops_it(tmp_path: Path, demo_db: Path) -> None:
    ports = {
        "SMARTMKT_APP_PORT": free_port(),
        "SMARTMKT_ACTION_PORT": free_port(),
        "SMARTMKT_RASA_PORT": free_port(),
    }
    env = {
        **os.environ,
        **{k: str(v) for k, v in ports.items()},
        "SMARTMKT_DATABASE_URL": f"sqlite:///{demo_db}",
        "SMARTMKT_TRACKER_DB": str(tmp_path / "conversations.db"),
        "SMARTMKT_VAR_DIR": str(tmp_path / "var"),  # no secrets set: the first start makes them here
    }
    env.pop("SMARTMKT_CUSTOMER_TOKEN_SECRET", None)
    log = (tmp_path / "run.log").open("w+")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "smartmkt"), "run", "--no-train"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while "smartmkt is running" not in (tmp_path / "run.log").read_text():
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "services did not come up"
            time.sleep(1)
        banner = (tmp_path / "run.log").read_text()
        rasa_url = f"http://127.0.0.1:{ports['SMARTMKT_RASA_PORT']}"
        assert rasa_url in banner and "curl -s" in banner
        secret_file = tmp_path / "var" / "secrets" / "customer_token_secret"
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        secret = secret_file.read_text()
        session, token = new_session_id(secret, "42"), issue_token(secret, "42")
        reply = httpx.post(
            f"{rasa_url}/webhooks/rest/webhook",
            json={"sender": session, "message": "hello", "metadata": {"customer_token": token}},
            timeout=60,
        ).json()
        assert "Welcome back" in reply[0]["text"]  # customer 42, from the signed token
        guest = httpx.post(
            f"{rasa_url}/webhooks/rest/webhook", json={"sender": "42", "message": "hello"}, timeout=60
        ).json()
        assert "Welcome back" not in guest[0]["text"]  # the raw id is a guest, not customer 42
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    time.sleep(1)
    for port in ports.values():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
