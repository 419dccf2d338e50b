"""The memory_quality dataset (bench/memory_data.py) stays honest, and its scoring adds up.

No server here. The generator's output is checked for what the benchmark relies on: the same
seed gives the same data; every evidence index points at a message that exists; questions
are worded apart from their evidence (not copies, little word overlap); the categories are
all there in numbers; the size indexes in about a minute. The harness's scoring
(bench/memory_quality.py: evidence recall, per category and setting, the report) is run with
stand-in retrievers defined in this file only; the benchmark itself searches the real
MemoryService (tests/test_memory_quality_bench.py).
"""

from __future__ import annotations

import asyncio
import re
import statistics
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest

from bench import memory_data, memory_quality
from bench.memory_data import CATEGORIES, Dataset
from bench.memory_quality import SETTINGS, Hit, Key, Location

# Words a question shares with anything; only the others count as overlap.
_FUNCTION_WORDS = frozenset(
    (  # noqa: SIM905 (a list literal of 90 words reads worse)
        "a an the and or but of to in on at for with from by about into over after before is "
        "are was were be been am do does did have has had i me my we us our you your he him "
        "his she her they them their it its this that these those what which who when where "
        "why how not no can could should would will just also some any all more most other "
        "than then so as if now still days"
    ).split()
)


def content_words(text: str) -> set[str]:
    return {
        word
        for word in re.findall(r"[a-z]+", text.lower())
        if len(word) > 2 and word not in _FUNCTION_WORDS
    }


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return memory_data.generate()


def evidence_text(dataset: Dataset, question: memory_data.Question) -> list[str]:
    entity = next(e for e in dataset.entities if e.entity_id == question.entity_id)
    return [entity.sessions[s].messages[m].content for s, m in question.evidence]


def test_the_same_seed_gives_the_same_dataset() -> None:
    first = memory_data.generate(7, 3)
    assert memory_data.generate(7, 3) == first
    assert memory_data.generate(8, 3) != first
    assert memory_data.generate() == memory_data.generate()


def test_size_shape_and_dates(dataset: Dataset) -> None:
    assert 12 <= len(dataset.entities) <= 20
    assert len({entity.entity_id for entity in dataset.entities}) == len(dataset.entities)
    # Indexing it takes under a minute at ~150 messages/s.
    assert 3000 <= dataset.message_count <= 6000
    now = datetime.now(UTC)
    for entity in dataset.entities:
        assert 10 <= len(entity.sessions) <= 25
        dates = [session.date for session in entity.sessions]
        assert dates == sorted(dates)
        assert len(set(dates)) == len(dates)
        assert dates[-1] < now  # AppendMessages refuses a create_time in the future
        assert (dates[-1] - dates[0]).days >= 90  # spread over months
        for session in entity.sessions:
            assert 6 <= len(session.messages) <= 30
            roles = [message.role for message in session.messages]
            assert roles == ["user", "assistant"] * (len(roles) // 2)


def test_messages_have_realistic_lengths(dataset: Dataset) -> None:
    for entity in dataset.entities:
        for session in entity.sessions:
            for message in session.messages:
                words = len(message.content.split())
                if message.role == "assistant":
                    assert 30 <= words <= 120, message.content
                else:
                    assert 3 <= words <= 80, message.content
                assert not re.search(r"[{}]", message.content), message.content


def test_questions_cover_every_category_in_numbers(dataset: Dataset) -> None:
    counts = dataset.category_counts()
    assert 300 <= len(dataset.questions) <= 520, counts
    assert set(counts) == set(CATEGORIES)
    for category, count in counts.items():
        assert count >= 0.12 * len(dataset.questions), (category, counts)
    per_entity = [
        sum(question.entity_id == entity.entity_id for question in dataset.questions)
        for entity in dataset.entities
    ]
    assert min(per_entity) >= 15, per_entity


def test_every_evidence_index_points_at_a_message(dataset: Dataset) -> None:
    entities = {entity.entity_id: entity for entity in dataset.entities}
    for question in dataset.questions:
        entity = entities[question.entity_id]
        assert question.evidence, question
        assert len(set(question.evidence)) == len(question.evidence), question
        for s, m in question.evidence:
            assert 0 <= s < len(entity.sessions), question
            assert 0 <= m < len(entity.sessions[s].messages), question
            assert entity.sessions[s].messages[m].role in ("user", "assistant")
        if question.category == "multi_hop":
            assert len(question.evidence) >= 2, question
        assert question.answer.strip(), question
    some_assistant_evidence = [
        (question, s, m)
        for question in dataset.questions
        for s, m in question.evidence
        if entities[question.entity_id].sessions[s].messages[m].role == "assistant"
    ]
    assert some_assistant_evidence  # what the assistant said is remembered too


def test_questions_are_distinct_within_an_entity(dataset: Dataset) -> None:
    for entity in dataset.entities:
        texts = [q.text for q in dataset.questions if q.entity_id == entity.entity_id]
        assert len(set(texts)) == len(texts), texts


def test_questions_are_worded_apart_from_their_evidence(dataset: Dataset) -> None:
    shares = []
    for question in dataset.questions:
        texts = evidence_text(dataset, question)
        asked = question.text.lower().rstrip("?")
        assert all(asked not in text.lower() for text in texts), question
        words = content_words(question.text)
        found = set().union(*(content_words(text) for text in texts))
        shares.append(len(words & found) / max(1, len(words)))
    assert statistics.fmean(shares) <= 0.25, statistics.fmean(shares)
    assert sum(share > 0.5 for share in shares) <= 0.1 * len(shares)
    # ...but not all of them: some questions use the words their evidence uses.
    assert sum(share > 0 for share in shares) >= 0.2 * len(shares)


def test_knowledge_updates_come_after_what_they_update(dataset: Dataset) -> None:
    """An update question's evidence with two messages: the earlier statement first."""
    for question in dataset.questions:
        if question.category == "knowledge_update" and len(question.evidence) == 2:
            (first, _), (second, _) = question.evidence
            assert first < second, question


# ---------------------------------------------------------------------------------------------
# Scoring, with stand-in retrievers (never the benchmark: it searches the real MemoryService)


def test_evidence_recall_counts_messages_covered_in_their_session() -> None:
    evidence: list[Location] = [("s1", 3), ("s2", 1)]
    assert memory_quality.evidence_recall(evidence, []) == 0.0
    assert memory_quality.evidence_recall(evidence, [Hit("s1", (3, 4), 50)]) == 0.5
    assert memory_quality.evidence_recall(evidence, [Hit("s2", (3,), 50)]) == 0.0
    both = [Hit("s2", (1, 2), 40), Hit("s1", (3,), 10)]
    assert memory_quality.evidence_recall(evidence, both) == 1.0


# (entity id, query, the entity's passages) -> passages, best first
Rank = Callable[[str, str, Sequence[tuple[Hit, str]]], list[Hit]]


class StandIn:
    """Passages as the server cuts them (a user message with the replies after it), stored
    under made-up session ids; ranked by a function of this test."""

    def __init__(self, dataset: Dataset) -> None:
        self.stored: dict[Key, Location] = {}
        self.passages: dict[str, list[tuple[Hit, str]]] = {}
        for entity in dataset.entities:
            passages = self.passages.setdefault(entity.entity_id, [])
            for s, session in enumerate(entity.sessions):
                session_id = f"{entity.entity_id}/{s}"
                for m, message in enumerate(session.messages):
                    self.stored[(entity.entity_id, s, m)] = (session_id, m + 1)
                    if message.role == "user":
                        passages.append((Hit(session_id, (m + 1,), 0), message.content))
                    else:
                        hit, text = passages[-1]
                        passages[-1] = (
                            Hit(session_id, (*hit.sequences, m + 1), 0),
                            f"{text}\n{message.content}",
                        )
        for entity_id, passages in self.passages.items():
            self.passages[entity_id] = [
                (Hit(hit.session_id, hit.sequences, len(text.split()) * 4 // 3), text)
                for hit, text in passages
            ]

    def search(self, rank: Rank) -> memory_quality.Search:
        async def search(entity_id: str, query: str, page_size: int, budget: int) -> list[Hit]:
            ranked = rank(entity_id, query, self.passages[entity_id])
            picked: list[Hit] = []
            used = 0
            for hit in ranked:
                if len(picked) >= page_size:
                    break
                if budget and used + hit.token_count > budget:
                    continue
                picked.append(hit)
                used += hit.token_count
            return picked

        return search


def _word_overlap(entity_id: str, query: str, passages: Sequence[tuple[Hit, str]]) -> list[Hit]:
    words = content_words(query)
    scored = [(len(words & content_words(text)), n, hit) for n, (hit, text) in enumerate(passages)]
    return [hit for score, _n, hit in sorted(scored, key=lambda x: (-x[0], x[1])) if score > 0]


@pytest.fixture(scope="module")
def small() -> Dataset:
    return memory_data.generate(11, 4)


def test_scoring_with_stand_in_retrievers(small: Dataset) -> None:
    stand_in = StandIn(small)
    evidence = memory_quality.evidence_locations(small, stand_in.stored)
    by_question = {
        (q.entity_id, q.text): locations
        for q, locations in zip(small.questions, evidence, strict=True)
    }

    def oracle(entity_id: str, query: str, passages: Sequence[tuple[Hit, str]]) -> list[Hit]:
        wanted = set(by_question[(entity_id, query)])
        first = [h for h, _ in passages if wanted & {(h.session_id, s) for s in h.sequences}]
        return first + [h for h, _ in passages if h not in first]

    def nothing(entity_id: str, query: str, passages: Sequence[tuple[Hit, str]]) -> list[Hit]:
        return []

    results = {
        name: asyncio.run(
            memory_quality.evaluate(name, stand_in.search(rank), small, stand_in.stored)
        )
        for name, rank in (("oracle", oracle), ("nothing", nothing), ("words", _word_overlap))
    }
    for label, _page_size, budget in SETTINGS:
        assert results["oracle"].recall(small, label) == 1.0
        assert results["nothing"].recall(small, label) == 0.0
        assert results["nothing"].mean_tokens(label) == 0
        words = results["words"].recall(small, label)
        # Word overlap finds some evidence, and misses much: the questions are paraphrased.
        assert 0.1 < words < 0.8, words
        for category in CATEGORIES:
            assert 0.0 <= results["words"].recall(small, label, category) <= 1.0
        if budget:
            assert all(a.tokens <= budget for a in results["oracle"].answers[label])
        else:
            assert all(len(a.hits) <= 10 for a in results["words"].answers[label])


def test_the_report_lists_every_mode_category_and_setting(small: Dataset) -> None:
    stand_in = StandIn(small)
    modes = tuple(
        asyncio.run(
            memory_quality.evaluate(mode, stand_in.search(_word_overlap), small, stand_in.stored)
        )
        for mode in memory_quality.MODES
    )
    result = memory_quality.Result(
        "sqlite", small, 2.5, 12.5, small.message_count, stand_in.stored, modes
    )
    report = memory_quality.format_report([result])
    rows = re.findall(
        r"^sqlite\s+(700 tokens|10 results)\s+(\w+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$",
        report,
        re.M,
    )
    assert {(setting, category) for setting, category, *_ in rows} == {
        (label, category) for label, _, _ in SETTINGS for category in (*CATEGORIES, "all")
    }, report
    totals = {setting: int(n) for setting, category, n, *_ in rows if category == "all"}
    assert totals == {label: len(small.questions) for label, _, _ in SETTINGS}
    for row in rows:
        assert len(set(row[3:])) == 1  # the same stand-in in every column
    assert re.search(r"^sqlite\s+700 tokens\s+mean tokens(\s+\d+){3}$", report, re.M), report
    assert re.search(r"^sqlite\s+10 results\s+p50 search ms(\s+[\d.]+){3}$", report, re.M)
    assert "hybrid recall within 700 tokens" in report
