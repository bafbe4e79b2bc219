"""The README's shell examples, pasted as a new user would: into a new shell at the repository
root (no virtual environment activated), against a running product. Every ```bash block after
the two commands at the top runs; ```text blocks only show a command's syntax."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import new_shell_env

from smartmkt.runtime.stack import RunningStack

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e

# curl as in the README, but failing on an HTTP error status (the README's curl -s would not),
# and each answer on a line of its own
PRELUDE = 'curl() { command curl --fail-with-body "$@"; echo; }\n'


def bash_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", markdown, flags=re.S | re.M)


def on_stack(block: str, stack: RunningStack) -> str:
    """The README's default ports, pointed at the test stack's free ports."""
    return block.replace("localhost:5005", f"127.0.0.1:{stack.settings.rasa_port}").replace(
        "localhost:8000", f"127.0.0.1:{stack.settings.app_port}"
    )


def run_blocks(blocks: list[str], stack: RunningStack, tmp_path: Path) -> str:
    """All blocks in one shell, in order (later examples use the earlier ones' $SESSION)."""
    script = PRELUDE + "\n".join(on_stack(block, stack) for block in blocks)
    (tmp_path / "readme.sh").write_text(script)
    env = new_shell_env(stack.settings.var_dir)
    assert subprocess.run(["bash", "-c", "command -v smartmkt"], env=env, capture_output=True).returncode
    result = subprocess.run(
        ["bash", "-euo", "pipefail", str(tmp_path / "readme.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{result.stderr[-3000:]}\n--- script ---\n{script}"
    return result.stdout


def test_readme_bash_examples_run_in_a_new_shell(stack: RunningStack, tmp_path: Path) -> None:
    blocks = bash_blocks((ROOT / "README.md").read_text())[1:]  # the first: make run / make test
    assert len(blocks) >= 2  # the typed example and the voice example
    out = run_blocks(blocks, stack, tmp_path)
    first_json = json.loads(out.split("\n", 1)[0])  # the REST reply to the first message
    assert first_json and "text" in first_json[0]
    voice = [answer for answer in json_lines(out) if isinstance(answer, dict) and "transcript" in answer]
    assert voice, out[-3000:]  # the answer of POST /voice
    assert voice[0]["transcript"] and voice[0]["responses"]


def json_lines(out: str) -> list[object]:
    """Every line of the output that is a JSON document."""
    answers: list[object] = []
    for line in out.splitlines():
        try:
            answers.append(json.loads(line))
        except ValueError:
            continue
    return answers
