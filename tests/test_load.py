"""The pieces of the load and soak benchmark (smartmkt bench chat --minutes) and of the action
server's threading (actions/action_server.py), without a running stack. The 5-minute run itself is a
benchmark, not a test: its figures are in docs/benchmarks.md."""

from __future__ import annotations

import asyncio
import itertools
import os
import pickle
import random
import threading
from typing import Any

import pytest
from rasa_sdk import utils as sdk_utils
from rasa_sdk.executor import ActionExecutor

from actions.action_server import Threaded, install, threaded
from smartmkt.bench.chat import Conversation, group_usage


def recommendation_reply(titles: list[str], offer: bool) -> list[dict[str, Any]]:
    products = [{"title": t} for t in titles]
    return [
        {"text": "Here are my picks"},
        {"custom": {"type": "recommendations", "products": products, "offer": {"id": 1} if offer else None}},
    ]


def test_a_conversation_follows_what_the_bot_answered() -> None:
    for seed in range(200):
        conversation = Conversation(random.Random(seed))
        said = []
        for message, kind in conversation.messages():
            said.append((message, kind))
            if kind == "recommend":
                conversation.read(recommendation_reply(["Fargo", "Babe"], offer=seed % 2 == 0))
            else:
                conversation.read([{"text": "ok"}])
        kinds = [k for _, k in said]
        assert kinds[0] == "greet" and kinds[-1] == "bye" and "recommend" in kinds
        for message, kind in said:
            if kind == "price" and message != "how much is it?":
                assert message in ("how much is Fargo?", "how much is Babe?")
            assert " a a" not in message  # "an action"
        # "yes"/"no" come only right after an offer
        for (_, before), (message, _) in itertools.pairwise(said):
            if message in ("yes", "no", "no thanks", "yes please"):
                assert before in ("recommend", "price", "offer") and seed % 2 == 0


def test_group_usage_counts_a_process_and_its_group() -> None:
    rss_mb, cpu_s = group_usage(os.getpgrp())
    assert rss_mb > 10 and cpu_s > 0


THREADS: list[str] = []


def probe(dispatcher: Any, tracker: Any, domain: Any) -> list[Any]:
    THREADS.append(threading.current_thread().name)
    return []


def test_synchronous_actions_run_on_worker_threads_and_survive_pickling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrapped = threaded(probe)
    assert isinstance(wrapped, Threaded) and len(sdk_utils.arguments_of(wrapped)) == 3
    assert asyncio.run(sdk_utils.call_potential_coroutine(wrapped(None, None, None))) == []
    assert THREADS and THREADS[-1] != threading.main_thread().name

    # the real actions, wrapped; rasa-sdk pickles the executor into its Sanic worker process
    # (install() patches the class; monkeypatch puts the original back after the test)
    monkeypatch.setattr(ActionExecutor, "register_function", ActionExecutor.register_function)
    install()
    executor = ActionExecutor()
    executor.register_package("actions")
    assert isinstance(executor.actions["action_greet"], Threaded)
    assert not isinstance(executor.actions["validate_recommendation_form"], Threaded)  # a coroutine
    assert set(pickle.loads(pickle.dumps(executor)).actions) == set(executor.actions)
