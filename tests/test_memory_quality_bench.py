"""The memory_quality benchmark still runs end to end against the real server (a smoke run).

Two entities of bench/memory_data.py's dataset are stored with AppendMessages into a fresh
SQLite file, indexed, and searched in each mode by MemoriServer in this process
(`memory_quality.measure` with the QUICK plan), as `./dev bench --quick --only
memory_quality` does. It checks that everything is stored and indexed, that searches stay
within the entity and the asked page size and budget, that every mode finds something, and
that the report is complete. It asserts nothing about quality: the figures of two entities
mean little.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from bench import memory_quality
from bench.memory_data import CATEGORIES
from bench.memory_quality import MODES, SETTINGS

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> memory_quality.Result:
    database = tmp_path_factory.mktemp("memory-quality") / "bench.db"
    return asyncio.run(
        memory_quality.measure(f"sqlite:///{database}", "sqlite", memory_quality.QUICK)
    )


def test_everything_is_stored_and_indexed(result: memory_quality.Result) -> None:
    dataset = result.dataset
    assert len(dataset.entities) == 2
    assert len(result.stored) == dataset.message_count
    assert result.indexed == dataset.message_count
    sessions = {session_id for session_id, _sequence in result.stored.values()}
    assert len(sessions) == dataset.session_count
    for entity in dataset.entities:  # sequences in request order, one per message
        for s, session in enumerate(entity.sessions):
            sequences = [
                result.stored[(entity.entity_id, s, m)][1] for m in range(len(session.messages))
            ]
            assert sequences == sorted(set(sequences))


def test_searches_stay_within_the_entity_page_and_budget(result: memory_quality.Result) -> None:
    dataset = result.dataset
    owner = {
        session_id: entity_id for (entity_id, _s, _m), (session_id, _) in result.stored.items()
    }
    assert [mode.mode for mode in result.modes] == list(MODES)
    for mode in result.modes:
        for label, page_size, budget in SETTINGS:
            answers = mode.answers[label]
            assert len(answers) == len(dataset.questions)
            for question, answer in zip(dataset.questions, answers, strict=True):
                assert len(answer.hits) <= page_size
                if budget:
                    assert answer.tokens <= budget, (mode.mode, question.text)
                for hit in answer.hits:
                    assert owner[hit.session_id] == question.entity_id
                    assert hit.sequences
                    assert hit.token_count > 0
            assert mode.recall(dataset, label) > 0, (mode.mode, label)
            assert mode.p50_ms(label) > 0


def test_the_report_is_complete(result: memory_quality.Result, tmp_path: Path) -> None:
    report = memory_quality.format_report([result])
    rows = re.findall(
        r"^sqlite\s+(700 tokens|10 results)\s+(\w+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$",
        report,
        re.M,
    )
    assert {(setting, category) for setting, category, *_ in rows} == {
        (label, category) for label, _, _ in SETTINGS for category in (*CATEGORIES, "all")
    }, report
    for _setting, _category, _n, *values in rows:
        assert all(0.0 <= float(value) <= 1.0 for value in values), report
    assert re.search(r"^sqlite: stored in [\d.]+ s and indexed in [\d.]+ s", report, re.M)
    details = tmp_path / "details.json"
    memory_quality.write_details(details, [result])
    assert details.read_text().count('"question"') == len(result.dataset.questions)
