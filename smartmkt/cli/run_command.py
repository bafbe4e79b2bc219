"""``smartmkt run``: the demo store and missing models first, then every service under one
supervisor, retraining and retention in the background (registered on the root app by
smartmkt.cli.main)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from smartmkt.cli.data_commands import data_load_demo
from smartmkt.cli.progress import console
from smartmkt.cli.train_commands import train_core_cmd, train_model, train_nlu_cmd
from smartmkt.settings import get_settings


def run_cmd(
    train: Annotated[
        bool,
        typer.Option(
            help="Load the demo store and train what is missing first; retrain on new data in the "
            "background once serving."
        ),
    ] = True,
) -> None:
    """Start Rasa, the action server and the app under one supervisor that restarts a service
    that dies or stops answering (Ctrl-C stops all)."""
    import threading

    from smartmkt.privacy.retention import schedule_retention
    from smartmkt.runtime.processes import service_specs
    from smartmkt.runtime.supervisor import Supervisor

    settings = get_settings()
    if train:
        data_load_demo()
        _train_missing(settings)
    specs = service_specs(settings)
    supervisor = Supervisor(specs)

    def announce() -> None:
        if not supervisor.wait_all_up():
            console.print(f"[red]not ready:[/red] {supervisor.not_up()}", soft_wrap=True)
            return
        console.print(_banner(settings), soft_wrap=True)
        for name, reason in _degraded(f"{settings.app_url}/health").items():
            console.print(f"[yellow]warning:[/] {name} model not ready ({reason})", soft_wrap=True)
        if train:
            _retrain_in_background(supervisor)

    threading.Thread(target=announce, daemon=True).start()
    schedule_retention(settings, supervisor.wait_all_up, lambda line: console.print(line, soft_wrap=True))
    sys.exit(supervisor.serve())


def _degraded(health_url: str) -> dict[str, str]:
    """The models a healthy service serves without (``not_ready`` in its /health)."""
    import httpx

    try:
        return dict(httpx.get(health_url, timeout=5).json().get("not_ready") or {})
    except (httpx.HTTPError, ValueError):
        return {}


# The models trained from the store's data: they go stale as customers buy. (NLU and Rasa core
# are trained from bot/: they change with the code, not with the shop's data.)
DATA_MODELS = ("recommender", "purchase")


def _train_missing(settings: Any) -> None:
    """Before serving: the models trained from bot/ when stale (a new version of the bot), and a
    data model only when none is served yet. A served data model is served at once, even if
    customers have bought since it was trained: `_retrain_in_background` catches up."""
    from smartmkt.store import model_registry

    train_nlu_cmd(False, None)
    train_core_cmd(False)
    for kind in DATA_MODELS:
        if model_registry.served(settings.models_dir, kind) is None:
            train_model(kind, False, None)


def _retrain_in_background(supervisor: Any) -> None:
    """`smartmkt train recommender` then `purchase`, niced, while the services serve: each is
    skipped when its data is unchanged and promoted only when its gate says so; the running
    services load a promoted model without a restart (smartmkt.lifecycle.hot_swap)."""
    import subprocess

    command = " && ".join(
        f"{shlex.quote(str(Path(sys.argv[0]).resolve()))} train {kind}" for kind in DATA_MODELS
    )
    proc = subprocess.Popen(
        ["nice", "-n", "10", "bash", "-c", command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    for raw in iter(proc.stdout.readline, b""):
        line = raw.decode(errors="replace").strip()
        if line:
            supervisor.write("train", line)
    supervisor.say(f"background retraining finished (exit {proc.wait()})")


def _banner(settings: Any) -> str:
    rest = f"{settings.rasa_url}/webhooks/rest/webhook"
    cli = ".venv/bin/smartmkt"  # pasted into a new shell at the repository root, without activating
    return (
        "\n[bold green]smartmkt is running[/bold green]\n"
        f"  Rasa (REST, socket.io) {settings.rasa_url}\n"
        f"  action server          http://{settings.host}:{settings.action_port}\n"
        f"  smartmkt app (NLU,API) {settings.app_url}  (docs: {settings.app_url}/docs)\n"
        f"  web chat               {settings.app_url}/\n"
        f"  demo shop with widget  {settings.app_url}/demo-shop  (the widget: {settings.app_url}/widget.js)\n"
        f"  marketer console       {settings.app_url}/console  (accounts: {cli} user create)\n\n"
        "In a new shell at the repository root, talk to the bot as demo customer 42 (a signed "
        "customer token and a session bound to it):\n"
        f'  eval "$({cli} token 42 --shell)"\n'
        f"  curl -s {rest} -H 'Content-Type: application/json' \\\n"
        '    -d "{\\"sender\\": \\"$SESSION\\", \\"message\\": \\"recommend a comedy under \\$10\\", '
        '\\"metadata\\": {\\"customer_token\\": \\"$TOKEN\\"}}"\n'
        "or by voice (any recording; espeak-ng makes one):\n"
        '  espeak-ng -w /tmp/ask.wav "can you recommend a comedy under ten dollars"\n'
        f"  curl -s {settings.app_url}/voice -F audio=@/tmp/ask.wav -F sender=$SESSION \\\n"
        "    -F customer_token=$TOKEN\n"
        "Ctrl-C stops everything.\n"
    )
