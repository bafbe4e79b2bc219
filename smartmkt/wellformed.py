"""Text that every part can carry: no lone UTF-16 surrogates.

JSON may spell half of a surrogate pair on its own ("\\ud800"), and Python decodes it to a lone
surrogate, a ``str`` that cannot be encoded as UTF-8: a tokenizer refuses it, SQLite and
PostgreSQL cannot store it, a JSON response cannot be written. Found by fuzzing: one such customer
message made POST /model/parse answer 500 and, once Rasa had stored it, every console request
(tests/test_fuzz_web.py). Each lone surrogate becomes U+FFFD, one character for one, so character
offsets (entities) stay where they were.
"""

from __future__ import annotations

import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def well_formed(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def well_formed_json(value: Any) -> Any:
    """A decoded JSON value with every string in it (keys too) made well formed."""
    if isinstance(value, str):
        return well_formed(value)
    if isinstance(value, list):
        return [well_formed_json(v) for v in value]
    if isinstance(value, dict):
        return {well_formed(k): well_formed_json(v) for k, v in value.items()}
    return value
