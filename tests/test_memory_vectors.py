"""Held vectors (memory/vectors.py) and how a search keeps them in step with the database,
without a database: rows are made here, the store is a fake that counts its reads."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from memori_server.memory import search as search_module
from memori_server.memory import vectors
from memori_server.memory.embedder import DIMENSIONS, to_stored
from memori_server.memory.search import MemorySearch
from memori_server.memory.vectors import VectorCache, nearest, read
from memori_server.storage.memory_store import SearchReads


def _unit(axis: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    vector = np.zeros(DIMENSIONS, dtype=np.float32)
    vector[axis] = 1.0
    return vector


def _row(passage_id: int, axis: int, session: str = "s1", process: str = "p") -> Any:
    return SimpleNamespace(
        id=passage_id,
        session_id=session,
        process_id=process,
        token_count=10 + passage_id,
        embedding=to_stored(_unit(axis)[None, :])[0],
    )


def test_extending_writes_in_place_once_and_copies_for_a_second_writer() -> None:
    base = read([_row(1, 0), _row(2, 1)])
    first = base.extended([_row(3, 2)])
    assert first.rows is base.rows  # room to grow: written after the base's rows
    assert list(first.ids) == [1, 2, 3]
    assert list(base.ids) == [1, 2]  # what the base's readers see never changes
    second = base.extended([_row(4, 3)])  # the base's rows are taken: a copy
    assert second.rows is not base.rows
    assert list(second.ids) == [1, 2, 4]
    assert list(first.ids) == [1, 2, 3]
    assert second.token_counts([4, 3, 2]) == {4: 14, 2: 12}
    off_loop = second.extended([_row(5, 4, session="new")], in_place=False)
    assert off_loop.rows is not second.rows
    assert list(off_loop.ids) == [1, 2, 4, 5]
    # Its new names are coded in a copy: the loop's versions may be adding names meanwhile.
    assert second.codes.get("new") == -1
    assert off_loop.codes.get("new") >= 0
    assert 5 not in nearest(off_loop, _unit(4), None, "new", 10)


def test_growth_doubles_and_keeps_everything() -> None:
    held = read([])
    for passage_id in range(1, 301):
        held = held.extended([_row(passage_id, passage_id % DIMENSIONS)])
    assert held.count == 300
    assert list(held.ids) == list(range(1, 301))
    assert held.rows.capacity < 2 * 300 + 64
    found = nearest(held, _unit(7), None, "", 1)
    assert found == {7: pytest.approx(1.0, abs=1e-3)}


def test_nearest_filters_by_process_session_and_deletion() -> None:
    held = read(
        [
            _row(1, 0, session="a", process="p"),
            _row(2, 0, session="b", process="p"),
            _row(3, 0, session="c", process="q"),
        ]
    )
    query = _unit(0)
    assert set(nearest(held, query, None, "", 10)) == {1, 2, 3}
    assert set(nearest(held, query, "p", "", 10)) == {1, 2}
    assert set(nearest(held, query, "p", "a", 10)) == {2}
    assert set(nearest(held, query, "unknown", "", 10)) == set()
    assert set(nearest(held, query, None, "never-held", 10)) == {1, 2, 3}
    held.mark_deleted([2])
    assert set(nearest(held, query, None, "", 10)) == {1, 3}
    assert set(nearest(held, query, None, "", 10, also=[2])) == {1, 3}
    assert held.matches((2, 3))
    assert not held.matches((3, 3))


def test_the_cache_is_bounded_and_accounts_for_growth() -> None:
    one = read([_row(n, 0) for n in range(1, 11)])
    cache = VectorCache(max_bytes=int(2.5 * one.nbytes))
    for entity in ("a", "b", "c"):
        cache.put(("t", entity), read([_row(n, 0) for n in range(1, 11)]))
    assert cache.get(("t", "a")) is None  # least recently used went first
    assert cache.get(("t", "b")) is not None
    assert cache.bytes == 2 * one.nbytes


class _FakeStore:
    """A store over a list of rows, counting what a search asks of it."""

    dialect = "sqlite"

    def __init__(self, rows: Sequence[Any]) -> None:
        self.rows = list(rows)
        self.full_reads = 0
        self.version_reads = 0
        self.asked: list[list[int]] = []

    async def search_reads(
        self,
        tenant_id: str,
        entity_id: str,
        *,
        vectors_after: int | None,
        version: bool,
        lexical: Any,
    ) -> SearchReads:
        counted = None
        if version:
            self.version_reads += 1
            counted = (len(self.rows), max((row.id for row in self.rows), default=0))
        if vectors_after == 0:
            self.full_reads += 1
        after = [] if vectors_after is None else [r for r in self.rows if r.id > vectors_after]
        return SearchReads(counted, after, [])

    async def vectors(self, tenant_id: str, entity_id: str, after_id: int = 0) -> list[Any]:
        self.full_reads += 1
        return list(self.rows)

    async def passages(self, tenant_id: str, ids: Sequence[int]) -> dict[int, Any]:
        self.asked.append(list(ids))
        when = datetime(2026, 1, 1, tzinfo=UTC)
        return {
            row.id: SimpleNamespace(
                id=row.id,
                session_id=row.session_id,
                seq_first=1,
                seq_last=2,
                text=f"passage {row.id}",
                create_time=when,
            )
            for row in self.rows
            if row.id in ids
        }


class _FakeEmbedder:
    def embed_one(self, text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        return _unit(int(text))


def _search(store: _FakeStore) -> MemorySearch:
    return MemorySearch(store, _FakeEmbedder(), mode=search_module.SearchMode.DENSE)  # type: ignore[arg-type]


async def _ids(search: MemorySearch, axis: int, page: int = 2) -> list[int]:
    found = await search.search("t", "e", None, str(axis), page_size=page, token_budget=0)
    return [int(m.text.split()[1]) for m in found]


def test_a_search_reads_new_passages_only_and_skips_deleted_ones_for_good() -> None:
    async def scenario() -> None:
        store = _FakeStore([_row(1, 0), _row(2, 0), _row(3, 1)])
        search = _search(store)
        assert set(await _ids(search, 0)) == {1, 2}
        assert store.full_reads == 1
        store.rows.append(_row(4, 0))
        assert set(await _ids(search, 0, page=3)) == {1, 2, 4}
        assert store.full_reads == 1  # appended, not read again
        store.rows = [row for row in store.rows if row.id != 1]  # deleted elsewhere
        assert set(await _ids(search, 0, page=3)) == {2, 3, 4}  # passed over when picked
        assert [sorted(ids) for ids in store.asked[-2:]] == [[1, 2, 4], [3]]
        assert set(await _ids(search, 0, page=3)) == {2, 3, 4}
        assert sorted(store.asked[-1]) == [2, 3, 4]  # 1 never ranked again
        assert store.full_reads == 1
        assert store.version_reads == 0
        search.close()

    asyncio.run(scenario())


def test_every_verify_interval_a_search_checks_for_deletions_nobody_met(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> None:
        store = _FakeStore([_row(1, 0), _row(2, 1), _row(3, 2)])
        search = _search(store)
        await _ids(search, 0)
        store.rows = [row for row in store.rows if row.id != 3]  # never a result
        monkeypatch.setattr(search_module, "VERIFY_SECONDS", 0.0)
        await _ids(search, 0)
        assert store.version_reads == 1
        assert store.full_reads == 2  # the count differed: read again
        held = search.vectors.get(("t", "e"))
        assert held is not None
        assert list(held.ids) == [1, 2]
        await _ids(search, 0)
        assert store.full_reads == 2  # the count matches now
        search.close()

    asyncio.run(scenario())


def test_many_passages_indexed_since_are_appended_off_the_loop() -> None:
    async def scenario() -> None:
        store = _FakeStore([_row(1, 0)])
        search = _search(store)
        await _ids(search, 5)
        store.rows += [_row(n, 9 if n == 200 else 0) for n in range(2, 2 + vectors.LOOP_ROWS + 10)]
        assert set(await _ids(search, 9, page=1)) == {200}
        held = search.vectors.get(("t", "e"))
        assert held is not None
        assert held.count == vectors.LOOP_ROWS + 11
        assert store.full_reads == 1
        search.close()

    asyncio.run(scenario())
