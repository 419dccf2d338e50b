"""The memory_quality benchmark still runs end to end against the real server (a smoke run).

`python -m bench.memory_quality --quick` in this process (`memory_quality.run` with the QUICK
plan, SQLite only): two entities of bench/memory_data.py's dataset are stored with
AppendMessages into a fresh SQLite file, indexed, and searched in each mode by MemoriServer.
It checks that everything is stored and indexed, that searches stay within the entity and the
asked page size and budget, that every mode finds something, and that the report and the
details file are complete. It asserts nothing about quality: the figures of two entities
mean little.
"""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench import memory_quality
from bench.memory_data import CATEGORIES
from bench.memory_quality import MODES, SETTINGS

pytestmark = pytest.mark.timeout(600)


@dataclass(frozen=True)
class Run:
    result: memory_quality.Result
    printed: str
    details: Path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    details = tmp_path_factory.mktemp("memory-quality") / "details.json"
    printed = io.StringIO()
    with redirect_stdout(printed):
        results = memory_quality.run(memory_quality.QUICK, None, details)
    assert len(results) == 1
    return Run(results[0], printed.getvalue(), details)


@pytest.fixture(scope="module")
def result(run: Run) -> memory_quality.Result:
    return run.result


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


def test_the_report_and_details_are_complete(run: Run) -> None:
    report = run.printed
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
    assert "hybrid recall within 700 tokens" in report
    records = json.loads(run.details.read_text())
    assert len(records) == len(run.result.dataset.questions)
    for record in records:
        assert record["evidence"]
        assert set(record["modes"]) == set(MODES)
        for mode in record["modes"].values():
            assert set(mode) == {label for label, _, _ in SETTINGS}


def test_the_command_line_parses() -> None:
    with pytest.raises(SystemExit) as exited, redirect_stdout(io.StringIO()):
        memory_quality.main(["--help"])
    assert exited.value.code == 0
