"""``smartmkt bot``: Rasa's own checks of the project in bot/, run in the bot environment."""

from __future__ import annotations

import typer

from smartmkt.settings import get_settings

bot_app = typer.Typer(help="The Rasa project in bot/ (runs in .venv-bot).", no_args_is_help=True)


def _rasa(args: list[str]) -> None:
    """``python -m rasa ARGS`` in bot/ with the bot environment's Python; its exit code is ours."""
    import subprocess

    from smartmkt.lifecycle.kinds import bot_python

    settings = get_settings()
    code = subprocess.run([str(bot_python(settings)), "-m", "rasa", *args], cwd=settings.bot_dir).returncode
    if code:
        raise typer.Exit(code)


@bot_app.command("validate")
def bot_validate() -> None:
    """`rasa data validate`: domain, rules, stories and NLU data agree (warnings fail)."""
    _rasa(
        [
            "data",
            "validate",
            "--domain",
            "domain.yml",
            "--data",
            "data",
            "--config",
            "config.yml",
            "--fail-on-warnings",
        ]
    )


@bot_app.command("test-stories")
def bot_test_stories() -> None:
    """`rasa test core` on bot/tests/test_stories.yml with the served dialogue model."""
    from smartmkt.store import model_registry

    settings = get_settings()
    model = model_registry.served_path(settings.models_dir, "rasa_core")
    _rasa(
        [
            "test",
            "core",
            "--stories",
            "tests/test_stories.yml",
            "--model",
            str(model),
            "--out",
            str(settings.var_dir / "story-results"),
            "--fail-on-prediction-errors",
        ]
    )
