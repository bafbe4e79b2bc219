"""What is left of a message to search by meaning once the entities and the filler are gone.

"recommend me a comedy under $10" -> "" (the filters say it all); "something funny and short"
-> "funny short". An empty result means "no text query": the history decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_FILLER_WORDS = """
a an the i me my we you your it its is are am be to for of on in at with and or but so any
some something anything movie movies film films flick flicks title titles show watch watching
recommend recommendation recommendations suggest suggestion suggestions please pls can could
would will should want wanna like love get give find tell need looking look something
good great nice best new another more other one ones under below less than cheaper cheap over
from about around up dollars dollar bucks usd eur price year years decade what which do does
have has got tonight today now hi hey hello thanks thank yes no not nothing without except
ok okay maybe really just also too very kind sort type mood into feel feeling us them him her
i'm im i'd i've what's whats that that's this these those there here it's let's we'd we're both
either most least max maximum stuff thing things rather instead prefer preferably ideally
"""
_FILLER = frozenset(_FILLER_WORDS.split())


def content_text(text: str, entity_spans: Iterable[tuple[int, int]] = ()) -> str:
    """``text`` without entity spans, numbers and filler words."""
    chars = list(text)
    for start, end in entity_spans:
        for i in range(max(0, start), min(len(chars), end)):
            chars[i] = " "
    words = re.findall(r"[a-zA-Z][a-zA-Z'-]+", "".join(chars).lower())
    return " ".join(w for w in words if w not in _FILLER)
