"""Ranking without I/O: the query's words for full-text search, rank fusion, and picking
results within a page size and a token budget."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TypeVar

K = TypeVar("K")

# Reciprocal rank fusion's constant (Cormack et al. 2009): a list's top ranks count, but no
# single list dominates.
RRF_K = 60
MAX_QUERY_WORDS = 32
_WORD = re.compile(r"[^\W_]+")
# Words that say nothing about what to find; full-text ranks would reward them otherwise.
STOPWORDS = frozenset(
    (  # noqa: SIM905 (a list literal of 120 words reads worse)
        "a about above after again against all am an and any are as at be because been before "
        "being below between both but by can could did do does doing down during each few for "
        "from further had has have having he her here hers herself him himself his how i if "
        "in into is it its itself just me more most my myself no nor not now of off on once "
        "only or other our ours ourselves out over own same she should so some such than that "
        "the their theirs them themselves then there these they this those through to too "
        "under until up very was we were what when where which while who whom why will with "
        "would you your yours yourself yourselves ever tell know remember said say mentioned "
        "told did anything something "
    ).split()
)


def query_words(query: str) -> list[str]:
    """The query's distinct content words, lower-case, in order (at most MAX_QUERY_WORDS)."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        if word not in STOPWORDS and word not in seen:
            seen[word] = None
    return list(seen)[:MAX_QUERY_WORDS]


def fts5_match(scope: str, words: Sequence[str]) -> str:
    """An FTS5 query: the entity's scope token and any of the words (each quoted, so no
    word is read as an operator)."""
    alternatives = " OR ".join(f'"{word}"' for word in words)
    return f'scope : "{scope}" AND text : ({alternatives})'


def tsquery(words: Sequence[str]) -> str:
    """A PostgreSQL `to_tsquery` text: any of the words (letters and digits only)."""
    return " | ".join(words)


def fused(rankings: Iterable[Sequence[K]], k: int = RRF_K) -> list[tuple[K, float]]:
    """Reciprocal rank fusion: each item scores the sum of 1/(k + rank) over the rankings
    it appears in; best first (ties keep first-seen order)."""
    scores: dict[K, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: pair[1], reverse=True)


def within(
    ranked: Sequence[tuple[K, float]],
    tokens: dict[K, int],
    page_size: int,
    token_budget: int,
) -> list[tuple[K, float]]:
    """The best items, at most `page_size`, whose tokens add up to at most `token_budget`
    (0: no cap); an item that does not fit is passed over for smaller ones after it."""
    picked: list[tuple[K, float]] = []
    used = 0
    for item, score in ranked:
        if len(picked) >= page_size:
            break
        cost = tokens.get(item)
        if cost is None:
            continue  # deleted since it was ranked
        if token_budget and used + cost > token_budget:
            continue
        picked.append((item, score))
        used += cost
    return picked


__all__ = ["fts5_match", "fused", "query_words", "tsquery", "within"]
