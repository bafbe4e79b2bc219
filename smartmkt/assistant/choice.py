"""Which of the items on the table a customer means: "the second one", "the Home Alone one", "#2".

An order must never come from a guess. The chat shows a customer a short numbered list (offers,
recommendations); when they answer "yes" or "buy it" to a list of several, the bot asks which,
and their answer is read here. Framework-free and pure: the actions pass the titles on the table
in the order they were shown, and get back an index, or word that the customer pointed at the
table but not at exactly one item (then the bot asks, it does not pick).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from smartmkt.catalog import fold, title_key

ORDINALS: dict[str, int] = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
    "fifth": 5, "5th": 5, "sixth": 6, "6th": 6, "seventh": 7, "7th": 7, "eighth": 8, "8th": 8,
    "ninth": 9, "9th": 9, "tenth": 10, "10th": 10, "top": 1,
}  # fmt: skip
LAST = ("last", "final", "bottom")
NUMBERS: dict[str, int] = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip
_NUMBER = r"(\d{1,2}|" + "|".join(NUMBERS) + r")"
# A number counts as a position only with a marker ("number two", "#2", "option 3", "no. 2"),
# or when it is the whole answer ("2", "two please"): "buy 2 copies" or "Apollo 13" are not.
_MARKED = re.compile(
    r"(?:#\s*|\bnumber\s+|\bnum\.?\s*|\bnr\.?\s*|\boption\s+|\bitem\s+|\bchoice\s+)" + _NUMBER + r"\b"
)
_MARKED_NO = re.compile(r"\bno\.?\s*(\d{1,2})\b")  # "no. 2", "no 2"; never "no, two of them"
_ALONE = re.compile(r"^(?:the\s+)?" + _NUMBER + r"(?:\s+please)?\s*[.!)]?$")
# "the cheaper one", "the one from 1995": a pointer at the table this module cannot follow.
_THE_X_ONE = re.compile(r"\bthe\s+(?!one\b)[\w'-]+(?:\s+[\w'-]+){0,5}\s+one\b")
_THE_ONE_WHICH = re.compile(r"\bthe one (?:from|with|that|which|about|in|where|starring|by)\b")

# Words a customer uses around a choice; a title's other words are what tell titles apart.
_FILLER = """a an and the of to in on for with from by at as or is it its be am are was i im ill id
    ive me my we us you your he she they them this that these those one ones some all both any
    buy get take want wanted like please yes yeah yep ok okay sure order purchase have go will
    would could can let lets do just now then so thanks thank cart basket add grab pay copy
    movie film title deal offer price much how what which whatever gimme need"""
FILLER = frozenset(_FILLER.split())
STOPWORDS = FILLER | frozenset(ORDINALS) | frozenset(LAST) | frozenset(NUMBERS)


@dataclass(frozen=True)
class Choice:
    """What the customer's words say about the table.

    ``index``: the item meant (0-based), when exactly one is. ``referred``: the words point at
    the table ("the second one", "the star one", "the fifth one" of three), resolved or not, so
    the caller asks which instead of falling back to a pending offer or the catalog.
    """

    index: int | None = None
    referred: bool = False


@dataclass(frozen=True)
class Pick:
    """The item to act on (``index``), or ``ask``: more than one could be meant, so ask which."""

    index: int | None = None
    ask: bool = False


def words(text: str) -> list[str]:
    """Lower-case word tokens; apostrophes join ("i'll" -> "ill", "schindler's" -> "schindlers")."""
    return re.findall(r"[a-z0-9]+", fold(text).replace("'", ""))


def content_words(title: str) -> set[str]:
    """The words of a title that can tell it apart: not filler, not one character. A title made
    only of such words ("Seven", "The First") keeps its numbers and ordinals."""
    title_words = [w for w in words(title_key(title)) if len(w) > 1]
    return names_something(title) or {w for w in title_words if w not in FILLER}


def names_something(text: str) -> set[str]:
    """The words of ``text`` that are neither filler nor a position: an entity "second one"
    names nothing, "The Last Emperor" names "emperor"."""
    return {w for w in words(title_key(text)) if w not in STOPWORDS and len(w) > 1}


def position(text: str, count: int, ignore: frozenset[str] = frozenset()) -> Choice:
    """The 0-based position an ordinal or a marked number names among ``count`` items.

    ``ignore``: words that belong to a title already named ("First Contact" says no position).
    """
    key = fold(text)
    said: set[int] = set()
    tokens = [t for t in words(key) if t not in ignore]
    said.update(ORDINALS[t] for t in tokens if t in ORDINALS)
    said.update(count for t in tokens if t in LAST)
    for pattern in (_MARKED, _MARKED_NO, _ALONE):
        for match in pattern.finditer(key):
            number = match.group(1)
            said.add(int(number) if number.isdigit() else NUMBERS[number])
    if not said:
        return Choice()
    if len(said) == 1 and 1 <= (n := said.pop()) <= count:
        return Choice(n - 1, True)
    return Choice(None, True)  # two positions at once, or one past the end: ask


def named_title(names: Sequence[str], titles: Sequence[str]) -> Choice:
    """The title among ``titles`` that an entity value or a button's payload names."""
    keys = [title_key(t) for t in titles]
    for name in names:
        key = title_key(name)
        if not key:
            continue
        exact = [i for i, k in enumerate(keys) if k == key]
        if len(exact) == 1:
            return Choice(exact[0], True)
        close = [i for i, k in enumerate(keys) if fuzz.ratio(k, key) >= 88]
        if len(close) == 1:
            return Choice(close[0], True)
        found = mentioned_title(name, titles)
        if found.referred:
            return found
    return Choice()


def mentioned_title(text: str, titles: Sequence[str]) -> Choice:
    """The title whose own words the customer used: a word no other title on the table has, or
    all of its words.

    "the Home Alone one" -> Home Alone; "the star one" with Star Wars and Star Trek on the table
    points at both, so it is referred but unresolved. Most words matched wins a tie of candidates
    ("star wars" against Star Wars and Wars of the Roses).
    """
    said = set(words(text))
    contents = [content_words(t) for t in titles]
    matched = [c & said for c in contents]
    candidates = []
    for i, hit in enumerate(matched):
        others = set().union(*(c for j, c in enumerate(contents) if j != i))
        if hit - others or (hit and hit == contents[i]):  # a word only it has, or all its words
            candidates.append(i)
    if not candidates:
        return Choice(None, any(matched))
    best = max(len(matched[i]) for i in candidates)
    top = [i for i in candidates if len(matched[i]) == best]
    return Choice(top[0], True) if len(top) == 1 else Choice(None, True)


def resolve_choice(text: str, titles: Sequence[str], named: Sequence[str] = ()) -> Choice:
    """Which of ``titles`` (in the order shown) ``text`` and the named ``named`` values mean.

    A title (named, or in the words) and a position must agree when both are given; a message
    that points at the table but not at exactly one item is ``referred`` without an index.
    """
    if not titles:
        return Choice()
    by_title = named_title(named, titles)
    if not by_title.referred:
        by_title = mentioned_title(text, titles)
    # Words of a title already named are no position: "I'll take First Contact", "buy The Last
    # Emperor" (named, not on the table), "buy Top Gun".
    spoken_titles = [titles[by_title.index]] if by_title.index is not None else []
    spoken_titles += [n for n in named if names_something(n)]
    ignore = frozenset(w for t in spoken_titles for w in words(title_key(t)))
    by_position = position(text, len(titles), ignore)
    if by_title.referred and by_position.referred:
        agree = by_title.index is not None and by_title.index == by_position.index
        return by_title if agree else Choice(None, True)
    if by_title.referred or by_position.referred:
        return by_title if by_title.referred else by_position
    pointing = _THE_X_ONE.search(fold(text)) or _THE_ONE_WHICH.search(fold(text))
    return Choice(None, bool(pointing))


def pick(text: str, titles: Sequence[str], named: Sequence[str] = (), pending: int | None = None) -> Pick:
    """The item a purchase (or a price question) is about, or ``ask`` when that is not certain.

    In order: what the customer's words choose on the table; a named title that is not on the
    table is for the caller's catalog (neither index nor ask); the single pending offer (a "yes"
    to "Want it?"); the only item on the table. Anything else with several items: ask.
    """
    choice = resolve_choice(text, titles, named)
    if choice.index is not None:
        return Pick(choice.index)
    if choice.referred:
        return Pick(ask=len(titles) > 0)
    if any(content_words(n) for n in named):  # "buy Fargo" with Fargo not on the table
        return Pick()
    if pending is not None and 0 <= pending < len(titles):
        return Pick(pending)
    if len(titles) == 1:
        return Pick(0)
    return Pick(ask=len(titles) > 1)
