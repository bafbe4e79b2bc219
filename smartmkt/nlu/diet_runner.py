"""Runs inside the bot environment (.venv-bot): parse texts with a trained Rasa NLU model.

Usage: python diet_runner.py MODEL.tar.gz IN.json OUT.json
Deliberately imports nothing from smartmkt: the bot environment has only Rasa.
"""

import asyncio
import json
import logging
import sys


async def _parse_all(model_path: str, texts: list) -> list:
    from rasa.core.agent import Agent

    agent = Agent.load(model_path)
    results = []
    for text in texts:
        parsed = await agent.parse_message(text)
        results.append(
            {
                "text": text,
                "intent": parsed.get("intent") or {"name": "", "confidence": 0.0},
                "entities": parsed.get("entities", []),
            }
        )
    return results


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    model_path, in_path, out_path = sys.argv[1:4]
    with open(in_path, encoding="utf-8") as handle:
        texts = json.load(handle)
    results = asyncio.run(_parse_all(model_path, texts))
    with open(out_path, "w", encoding="utf-8") as handle:
        json.dump(results, handle)


if __name__ == "__main__":
    main()
