"""Personal data: masking it in conversations (``redact``, ``rasa_events``; ``stored`` for those
stored before), erasing a customer (``erasure``) and keeping conversations only so long
(``retention``).

``redact`` and ``rasa_events`` use the standard library and phonenumbers only: Rasa's tracker store
(bot/redacting_store.py, in the bot environment) imports them too. Nothing is imported here.
"""
