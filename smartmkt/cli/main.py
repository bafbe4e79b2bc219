"""``smartmkt``: set up the store, train, evaluate, recommend, run and benchmark.

The root command only: its --verbose option, and each command group (a module of its own in
smartmkt.cli) and single command added in the order ``smartmkt --help`` lists them."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from smartmkt.cli.apikey_commands import apikey_app
from smartmkt.cli.bench_commands import bench_app
from smartmkt.cli.bot_commands import bot_app
from smartmkt.cli.cluster_commands import cluster_app
from smartmkt.cli.console_commands import console_app, nlu_app
from smartmkt.cli.data_commands import data_app
from smartmkt.cli.db_commands import db_app
from smartmkt.cli.eval_commands import eval_app
from smartmkt.cli.privacy_commands import customer_app, privacy_app, retention_app
from smartmkt.cli.query_commands import parse_cmd, recommend_cmd, transcribe_cmd
from smartmkt.cli.run_command import run_cmd
from smartmkt.cli.token_command import token_cmd
from smartmkt.cli.train_commands import train_app
from smartmkt.cli.user_commands import user_app
from smartmkt.cli.webhook_commands import webhook_app

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(
    help="smartmkt: conversational marketing assistant.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(db_app, name="db")
app.add_typer(data_app, name="data")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
app.add_typer(bench_app, name="bench")
app.add_typer(bot_app, name="bot")
app.add_typer(console_app, name="console")
app.add_typer(nlu_app, name="nlu")
app.add_typer(customer_app, name="customer")
app.add_typer(retention_app, name="retention")
app.add_typer(privacy_app, name="privacy")
app.add_typer(user_app, name="user")
app.add_typer(apikey_app, name="apikey")
app.add_typer(webhook_app, name="webhook")
app.add_typer(cluster_app, name="cluster")
app.command("recommend")(recommend_cmd)
app.command("transcribe")(transcribe_cmd)
app.command("parse")(parse_cmd)
app.command("run")(run_cmd)
app.command("token")(token_cmd)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


if __name__ == "__main__":
    app()
