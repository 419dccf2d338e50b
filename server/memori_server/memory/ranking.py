"""Ranking without I/O: the query's words for full-text search, score fusion, and picking
results within a page size and a token budget."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

K = TypeVar("K")

# Hybrid score = cosine + LEXICAL_WEIGHT * full-text strength (see `combined`).
LEXICAL_WEIGHT = 0.2
# The full-text score that counts as half strength, per database: SQLite's BM25 and
# PostgreSQL's ts_rank_cd have different scales.
LEXICAL_HALF_STRENGTH = {"sqlite": 5.0, "postgresql": 0.2}
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


def scoped_tsquery(scope: str, words: Sequence[str]) -> str:
    """A PostgreSQL `to_tsquery` text: the entity's scope token and any of the words."""
    return f"{scope} & ({tsquery(words)})"


def saturated(score: float, half: float) -> float:
    """A full-text score (higher is better, unbounded) as a strength in [0, 1): `half`
    scores 0.5, so one strong match cannot outweigh what the embeddings say."""
    score = max(score, 0.0)
    return score / (score + half)


def combined(dense: dict[K, float], lexical: dict[K, float]) -> list[tuple[K, float]]:
    """Cosine similarity plus LEXICAL_WEIGHT times the full-text strength, best first.

    Scores, not ranks (reciprocal rank fusion) are combined: a full-text list always has
    a first place, however weak its match (a common word), and rank fusion would let it
    push aside what the embeddings found; a strength only lifts a passage as far as its
    words really match. Measured on bench/memory_quality.py: with paraphrased questions
    rank fusion lost a third of the evidence that embeddings alone found, while this stays
    level with them and gains where a question shares rare words with its evidence."""
    scores = {
        item: cosine + LEXICAL_WEIGHT * lexical.get(item, 0.0) for item, cosine in dense.items()
    }
    return sorted(scores.items(), key=lambda pair: pair[1], reverse=True)


def ranked_by(scores: dict[K, float]) -> list[tuple[K, float]]:
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


__all__ = [
    "LEXICAL_HALF_STRENGTH",
    "LEXICAL_WEIGHT",
    "combined",
    "fts5_match",
    "query_words",
    "ranked_by",
    "saturated",
    "scoped_tsquery",
    "tsquery",
    "within",
]
