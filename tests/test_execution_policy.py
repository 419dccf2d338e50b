"""Where units of storage work run (storage/execution.py), for each kind of unit."""

from __future__ import annotations

import pytest
from memori_server.storage.execution import ExecutionPolicy, Path
from memori_server.storage.units import Unit, Work


def _unit() -> Unit[None]:
    yield from ()


def _work(*, writes: bool = False, heavy: bool = False, slow: bool = False) -> Work[None]:
    return Work(_unit, writes=writes, heavy=heavy, slow=slow)


@pytest.mark.parametrize(
    ("dialect", "work", "paths"),
    [
        ("sqlite", _work(), (Path.LOOP, Path.THREAD)),
        ("sqlite", _work(slow=True), (Path.THREAD,)),
        ("sqlite", _work(heavy=True), (Path.THREAD,)),
        # Synced or not: a synced commit leaves the loop inside the loop path.
        ("sqlite", _work(writes=True), (Path.LOOP, Path.WRITER)),
        ("sqlite", _work(writes=True, heavy=True), (Path.WRITER,)),
        ("postgresql", _work(), (Path.LOOP, Path.THREAD)),
        ("postgresql", _work(slow=True), (Path.LOOP, Path.THREAD)),
        ("postgresql", _work(heavy=True), (Path.THREAD,)),
        ("postgresql", _work(writes=True), (Path.LOOP, Path.THREAD)),
    ],
)
def test_paths_by_kind_of_unit(dialect: str, work: Work[None], paths: tuple[Path, ...]) -> None:
    policy = ExecutionPolicy(dialect, fast_paths=True)
    assert policy.paths(work) == paths


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_without_fast_paths_nothing_runs_on_the_loop(dialect: str) -> None:
    policy = ExecutionPolicy(dialect, fast_paths=False)
    for work in (_work(), _work(slow=True), _work(writes=True)):
        assert Path.LOOP not in policy.paths(work)
