"""``NoEventBroker``: bot/endpoints.yml's event broker when SMARTMKT_AMQP_URL is empty.

endpoints.yml cannot leave a section out by an environment variable, and Rasa fails on an unset
one, so "no broker" is spelled as a broker type whose factory returns None: Rasa then streams no
events, exactly as with no ``event_broker`` section at all.
"""

from __future__ import annotations

from typing import Any

from rasa.core.brokers.broker import EventBroker


class NoEventBroker(EventBroker):
    """No event broker (one machine: the console reads Rasa's events table itself)."""

    @classmethod
    async def from_endpoint_config(cls, broker_config: Any, event_loop: Any = None) -> None:
        return None

    def publish(self, event: dict[str, Any]) -> None:  # never instantiated; EventBroker requires it
        raise NotImplementedError("NoEventBroker is never created")
