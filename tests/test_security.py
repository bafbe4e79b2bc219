"""Security without the running product: customer tokens and sessions bound to them, local
secrets, and the app's hardening (headers, body limits, traversal, the chat's token endpoints,
POST /voice refusing other customers' sessions), through FastAPI's TestClient."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from smartmkt.security import identity
from smartmkt.security.identity import (
    Refused,
    customer_for,
    issue_token,
    new_session_id,
    session_belongs_to,
    verify_token,
)
from smartmkt.security.secrets import local_secret
from smartmkt.settings import PROJECT_ROOT, Settings
from smartmkt.web.app import create_app

SECRET = "s" * 48
OTHER = "o" * 48


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- tokens and sessions ----------------------------------------------------------------------
def test_a_token_names_its_customer_until_it_expires() -> None:
    token = issue_token(SECRET, "42", ttl_s=60, now=1000)
    assert verify_token(SECRET, token, now=1059) == "42"
    with pytest.raises(Refused, match="expired"):
        verify_token(SECRET, token, now=1060)


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: issue_token(OTHER, "42", now=time.time()),  # signed with another secret
        lambda t: t.rsplit(".", 1)[0] + "." + _b64(b"\0" * 32),  # signature replaced
        lambda t: t.rsplit(".", 1)[0] + ".",  # signature dropped
        # the payload changed to another customer, the signature kept
        lambda t: ".".join(
            [t.split(".")[0], _b64(json.dumps({"sub": "43", "exp": 2**40}).encode()), t.split(".")[2]]
        ),
        # alg "none" with no signature
        lambda t: (
            _b64(b'{"alg":"none"}') + "." + _b64(json.dumps({"sub": "42", "exp": 2**40}).encode()) + "."
        ),
        lambda t: t + "x",
        lambda t: "x" * 5000,
        lambda t: "",
        lambda t: "a.b",
        lambda t: "!!.??.%%",
        lambda t: None,
        lambda t: 42,
    ],
)
def test_forged_or_malformed_tokens_are_refused(forge) -> None:  # type: ignore[no-untyped-def]
    token = issue_token(SECRET, "42", now=time.time())
    with pytest.raises(Refused):
        verify_token(SECRET, forge(token))


def test_a_correctly_signed_token_with_another_algorithm_or_no_expiry_is_refused() -> None:
    import hashlib
    import hmac

    for header, payload in (
        ({"alg": "HS512"}, {"sub": "42", "exp": 2**40}),
        ({"alg": "HS256"}, {"sub": "42"}),
        ({"alg": "HS256"}, {"sub": "guest:x", "exp": 2**40}),
        ({"alg": "HS256"}, {"sub": 42, "exp": 2**40}),
    ):
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
        signature = _b64(hmac.new(SECRET.encode(), signing.encode(), hashlib.sha256).digest())
        with pytest.raises(Refused):
            verify_token(SECRET, f"{signing}.{signature}")


def test_tokens_are_standard_jwts_pyjwt_reads_and_writes() -> None:
    """A shop can issue tokens with any JWT library (PyJWT is in the bot's environment)."""
    python = PROJECT_ROOT / ".venv-bot" / "bin" / "python"
    assert python.exists(), "the bot environment (.venv-bot) is part of `make setup`"
    ours = issue_token(SECRET, "42", ttl_s=600)
    script = (
        "import jwt, sys, time; s = sys.argv[1]; "
        "print(jwt.decode(sys.argv[2], s, algorithms=['HS256'])['sub']); "
        "print(jwt.encode({'sub': '43', 'exp': int(time.time()) + 60}, s, algorithm='HS256'))"
    )
    out = subprocess.run(
        [str(python), "-c", script, SECRET, ours], capture_output=True, text=True, check=True
    )
    decoded, theirs = out.stdout.split()
    assert decoded == "42"
    assert verify_token(SECRET, theirs) == "43"


def test_a_session_id_is_random_and_bound_to_one_customer() -> None:
    a, b = new_session_id(SECRET, "42"), new_session_id(SECRET, "42")
    assert a != b and a.startswith("s1.") and "42" not in a.split(".", 1)[1]
    assert session_belongs_to(SECRET, a, "42") and session_belongs_to(SECRET, b, "42")
    assert not session_belongs_to(SECRET, a, "43")
    assert not session_belongs_to(OTHER, a, "42")
    assert not session_belongs_to(SECRET, a[:-1] + ("A" if a[-1] != "A" else "B"), "42")


def test_who_a_message_speaks_for() -> None:
    now = time.time()
    mine, theirs = issue_token(SECRET, "42", now=now), issue_token(SECRET, "43", now=now)
    session = new_session_id(SECRET, "42")
    assert customer_for(SECRET, session, mine) == identity.Customer("42", verified=True)
    with pytest.raises(Refused):  # someone else's session, with their own valid token
        customer_for(SECRET, session, theirs)
    with pytest.raises(Refused):  # someone else's session, no token
        customer_for(SECRET, session, None)
    with pytest.raises(Refused):  # a valid token, but the raw customer id as sender
        customer_for(SECRET, "42", mine)
    with pytest.raises(Refused):  # an expired token on the right session
        customer_for(SECRET, session, issue_token(SECRET, "42", ttl_s=1, now=now - 10))
    # no token and an ordinary sender id: a guest, never the customer the id looks like
    assert customer_for(SECRET, "42", None) == identity.Customer("guest:42", verified=False)
    long_guest = customer_for(SECRET, "x" * 500, None).ref
    assert long_guest.startswith("guest:h-") and len(long_guest) <= 128


# --- local secrets ----------------------------------------------------------------------------
def test_local_secrets_are_generated_once_with_mode_600(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    first = local_secret(settings, "customer_token_secret")
    assert len(first) >= 32 and local_secret(settings, "customer_token_secret") == first
    path = tmp_path / "secrets" / "customer_token_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert local_secret(settings, "rasa_auth_token") != first
    from_env = Settings(var_dir=tmp_path, customer_token_secret="e" * 40)
    assert local_secret(from_env, "customer_token_secret") == "e" * 40  # the environment wins


def test_no_secret_is_in_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [f for f in tracked if f.startswith("var/") or "/secrets/" in f]
    assert "var/" in (PROJECT_ROOT / ".gitignore").read_text().split()


# --- the app ------------------------------------------------------------------------------------
@pytest.fixture
def app_settings(tmp_path: Path, base_settings: Settings) -> Settings:
    return base_settings.model_copy(
        update={
            "var_dir": tmp_path,
            "database_url": f"sqlite:///{tmp_path / 'empty.db'}",
            "customer_token_secret": SECRET,
            "demo_tokens": False,
        }
    )


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def demo_client(app_settings: Settings) -> Iterator[TestClient]:
    settings = app_settings.model_copy(update={"demo_tokens": True})
    c = TestClient(create_app(settings), raise_server_exceptions=False)  # no lifespan: no NLU needed
    yield c
    c.close()


HEADED = [
    "/",
    "/console/login",
    "/console/conversations",
    "/static/chat.js",
    "/health",
    "/console/api/me",
    "/nope",
]


@pytest.mark.parametrize("path", HEADED)
def test_security_headers_on_pages_and_api(demo_client: TestClient, path: str) -> None:
    r = demo_client.get(path)
    csp = r.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"


def test_fastapis_api_pages_get_their_own_policy(demo_client: TestClient) -> None:
    """/docs is FastAPI's Swagger UI: an inline script and a bundle from jsDelivr."""
    csp = demo_client.get("/docs").headers["content-security-policy"]
    assert "https://cdn.jsdelivr.net" in csp and "frame-ancestors 'none'" in csp
    assert "cdn.jsdelivr.net" not in demo_client.get("/").headers["content-security-policy"]


def test_csp_lets_the_chat_reach_rasas_socket_only(demo_client: TestClient, app_settings: Settings) -> None:
    csp = demo_client.get("/", headers={"host": "shop.local:8000"}).headers["content-security-policy"]
    connect = next(d for d in csp.split("; ") if d.startswith("connect-src"))
    port = app_settings.rasa_port
    assert connect == f"connect-src 'self' http://shop.local:{port} ws://shop.local:{port}"


def test_pages_have_no_inline_scripts_styles_or_handlers() -> None:
    import re

    pages = (PROJECT_ROOT / "smartmkt" / "web" / "pages").rglob("*.html")
    for page in pages:
        text = page.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), page
        assert not re.search(r"\son[a-z]+\s*=", text, re.I), page
        assert "<style" not in text and " style=" not in text, page


@pytest.mark.parametrize(
    "path",
    [
        "/static/../settings.py",
        "/static/%2e%2e/%2e%2e/settings.py",
        "/static/..%2f..%2fsettings.py",
        "/static/%2e%2e%2f%2e%2e%2fweb%2fapp.py",
        "/static//etc/passwd",
        "/static/%2Fetc%2Fpasswd",
        "/static/....//....//etc/passwd",
        "/static/vendor/..%2f..%2fpackage.json",
        "/static/vendor/%2e%2e",
        "/static/chat.js%00.png",
        "/static/console/../../pages/chat.html",
        "/static/" + "../" * 12 + "etc/passwd",
    ],
)
def test_path_traversal_is_not_served(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code in (400, 404), (path, r.status_code)
    assert b"root:" not in r.content and b"BaseSettings" not in r.content and b"import" not in r.content


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/console/api/login", {"email": "a@b.c", "password": "x" * 70_000}),
        ("/model/parse", {"text": "x" * 70_000}),
        ("/chat/session", {"token": "x" * 70_000}),
        ("/chat/demo-token", {"customer": "x" * 70_000}),
        ("/console/api/nlu-reviews", {"text": "x" * 70_000}),
    ],
)
def test_oversized_json_bodies_get_413(client: TestClient, path: str, body: dict[str, str]) -> None:
    r = client.post(path, json=body)
    assert (r.status_code == 413 and "too large" in r.json()["error"]) or "larger than" in r.json()["error"]


def test_an_oversized_body_without_content_length_gets_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"x" * 1024

    r = client.post("/model/parse", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["error"]


def test_an_oversized_upload_gets_413(app_settings: Settings) -> None:
    settings = app_settings.model_copy(update={"asr_max_bytes": 10_000})
    with TestClient(create_app(settings), raise_server_exceptions=False) as small:
        over = small.post("/voice", files={"audio": ("a.wav", b"\0" * 20_000)}, data={"sender": "web-x"})
        assert over.status_code == 413 and over.json()["error"] == "too_large"  # the route's own answer
        runaway = b"\0" * (2 * 10_000 + 2 * 1024 * 1024)  # cut off before it is all spooled
        cut = small.post("/voice", files={"audio": ("a.wav", runaway)}, data={"sender": "web-x"})
        assert cut.status_code == 413 and "larger than" in cut.json()["error"]


def test_demo_tokens_only_when_the_demo_turns_them_on(client: TestClient, demo_client: TestClient) -> None:
    assert client.post("/chat/demo-token", json={"customer": "42"}).status_code == 404
    issued = demo_client.post("/chat/demo-token", json={"customer": "42"}).json()
    assert issued["customer_ref"] == "42" and verify_token(SECRET, issued["token"]) == "42"
    fresh = demo_client.post("/chat/demo-token", json={}).json()
    assert fresh["customer_ref"].startswith("web-") and fresh["customer_ref"] != "42"
    for bad in ("guest:42", "../42", "42 OR 1=1", "<script>", ""):
        assert demo_client.post("/chat/demo-token", json={"customer": bad}).status_code == 400


def test_a_session_only_for_a_valid_token(demo_client: TestClient) -> None:
    token = demo_client.post("/chat/demo-token", json={"customer": "42"}).json()["token"]
    got = demo_client.post("/chat/session", json={"token": token}).json()
    assert got["customer_ref"] == "42" and session_belongs_to(SECRET, got["session_id"], "42")
    for bad in (
        issue_token(OTHER, "42"),
        token[:-2],
        issue_token(SECRET, "42", ttl_s=1, now=time.time() - 5),
    ):
        r = demo_client.post("/chat/session", json={"token": bad})
        assert r.status_code == 401 and r.json()["error"]


@pytest.mark.parametrize(
    "case", ["victim session, no token", "victim session, own token", "forged", "expired"]
)
def test_voice_refuses_someone_elses_session_before_any_work(client: TestClient, case: str) -> None:
    victim = new_session_id(SECRET, "42")
    form = {"sender": victim}
    if case == "victim session, own token":
        form["customer_token"] = issue_token(SECRET, "666")
    elif case == "forged":
        form["customer_token"] = issue_token(OTHER, "42")
    elif case == "expired":
        form["customer_token"] = issue_token(SECRET, "42", ttl_s=1, now=time.time() - 5)
    r = client.post("/voice", files={"audio": ("a.wav", b"RIFF0000WAVE")}, data=form)
    assert r.status_code == 401 and r.json()["error"] == "not your session"


# --- console login rate limit -----------------------------------------------------------------
@pytest.fixture
def console_client(app_settings: Settings) -> Iterator[TestClient]:
    from smartmkt.console.users import create_user
    from smartmkt.store.db import make_engine
    from smartmkt.store.migrate import upgrade

    upgrade(app_settings.resolved_database_url)
    engine = make_engine(app_settings.resolved_database_url)
    create_user(engine, "admin@shop.example", "correct horse battery", "admin")
    engine.dispose()
    settings = app_settings.model_copy(update={"login_max_failures": 3, "login_window_s": 60})
    c = TestClient(create_app(settings), raise_server_exceptions=False)
    yield c
    c.close()


def _login(client: TestClient, password: str, email: str = "admin@shop.example") -> Any:
    return client.post("/console/api/login", json={"email": email, "password": password})


def test_login_is_rate_limited_per_email_and_address(
    console_client: TestClient, app_settings: Settings
) -> None:
    for _ in range(3):
        assert _login(console_client, "wrong password!").status_code == 401
    limited = _login(console_client, "correct horse battery")  # even the right password, now
    assert limited.status_code == 429 and "too many failed logins" in limited.json()["error"]
    assert 1 <= int(limited.headers["retry-after"]) <= 61
    # another e-mail from the same address is not locked out by these failures
    assert _login(console_client, "x", email="other@shop.example").status_code == 401
    # the failures are rows in the database (any replica sees them), hashed, never the e-mail
    from smartmkt.store.db import make_engine

    engine = make_engine(app_settings.resolved_database_url)
    with engine.connect() as conn:
        from sqlalchemy import text as sql

        keys = [r[0] for r in conn.execute(sql("SELECT key_hash FROM login_failures"))]
    engine.dispose()
    assert len(keys) == 4 and all(len(k) == 64 and "@" not in k for k in keys)
    # a second app on the same database (another replica) refuses too
    other = TestClient(create_app(app_settings.model_copy(update={"login_max_failures": 3})))
    assert _login(other, "correct horse battery").status_code == 429
    other.close()


def test_a_successful_login_clears_the_failures(console_client: TestClient) -> None:
    for _ in range(2):
        assert _login(console_client, "wrong password!").status_code == 401
    assert _login(console_client, "correct horse battery").status_code == 200
    for _ in range(2):
        assert _login(console_client, "wrong password!").status_code == 401
    assert _login(console_client, "correct horse battery").status_code == 200


def test_rasa_api_only_with_a_token_and_every_service_on_the_configured_host(app_settings: Settings) -> None:
    from smartmkt.runtime.processes import service_specs

    specs = {s.name: s for s in service_specs(app_settings)}
    rasa = specs["rasa"].command
    assert "--enable-api" not in rasa and "--auth-token" not in rasa  # nothing uses Rasa's API
    assert rasa[rasa.index("--interface") + 1] == "127.0.0.1"
    assert specs["app"].command[specs["app"].command.index("--host") + 1] == "127.0.0.1"
    assert specs["actions"].env["SANIC_HOST"] == "127.0.0.1"  # rasa-sdk's default is 0.0.0.0
    assert "--timeout-keep-alive" in specs["app"].command
    assert specs["rasa"].env["SMARTMKT_CUSTOMER_TOKEN_SECRET"] == SECRET
    assert specs["app"].env["SMARTMKT_DEMO_TOKENS"] == "false"  # the demo's token endpoint: off
    on = {s.name: s for s in service_specs(app_settings.model_copy(update={"rasa_enable_api": True}))}
    command = on["rasa"].command
    assert "--enable-api" in command
    token = command[command.index("--auth-token") + 1]
    assert len(token) >= 32 and token == local_secret(app_settings, "rasa_auth_token")


# --- the command line: file arguments and tokens ---------------------------------------------
def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    import os
    import sys

    env = {
        **os.environ,
        "SMARTMKT_VAR_DIR": str(tmp_path),
        "SMARTMKT_DATABASE_URL": f"sqlite:///{tmp_path}/s.db",
    }
    smartmkt = Path(sys.executable).parent / "smartmkt"
    return subprocess.run([str(smartmkt), *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize(
    "args",
    [
        ("data", "import", "--customers", "/nonexistent/../../etc/customers.csv"),
        ("data", "import", "--orders", "/etc"),
        ("data", "quarantine", "export", "/nonexistent-folder/q.csv"),
        ("data", "quarantine", "export", "/tmp"),
        ("transcribe", "../../../../nonexistent.wav"),
        ("transcribe", "/etc"),
        ("eval", "nlu", "--test-file", "/nonexistent.yml"),
    ],
)
def test_cli_file_arguments_fail_with_a_clear_error(tmp_path: Path, args: tuple[str, ...]) -> None:
    done = _cli(tmp_path, *args)
    out = done.stdout + done.stderr
    assert done.returncode != 0 and "error" in out.lower() and "Traceback" not in out, out[-2000:]


def test_cli_issues_a_token_and_a_bound_session(tmp_path: Path) -> None:
    done = _cli(tmp_path, "token", "42", "--shell")
    assert done.returncode == 0, done.stderr
    values = dict(line.split("=", 1) for line in done.stdout.split())
    secret = (tmp_path / "secrets" / "customer_token_secret").read_text()
    assert verify_token(secret, values["TOKEN"]) == "42"
    assert session_belongs_to(secret, values["SESSION"], "42")
    assert _cli(tmp_path, "token", "guest:42").returncode != 0


def test_a_body_that_arrives_too_slowly_gets_408(
    monkeypatch: pytest.MonkeyPatch, app_settings: Settings
) -> None:
    import asyncio

    from smartmkt.security import http

    monkeypatch.setattr(http, "BODY_TIMEOUT_S", 0.2)

    async def app(scope: Any, receive: Any, send: Any) -> None:  # reads the whole body, as a route does
        while (await receive()).get("more_body"):
            pass

    async def trickle() -> dict[str, Any]:  # a client that sends one byte, then nothing
        if not sent:
            sent.append(1)
            return {"type": "http.request", "body": b"{", "more_body": True}
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    sent: list[int] = []
    answers: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        answers.append(message)

    scope = {"type": "http", "method": "POST", "path": "/model/parse", "headers": [(b"host", b"x")]}
    asyncio.run(asyncio.wait_for(http.Hardening(app, app_settings)(scope, trickle, send), 5))
    assert answers[0]["status"] == 408 and b"too slowly" in answers[1]["body"]
