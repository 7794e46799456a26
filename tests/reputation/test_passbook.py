"""PassBook memory: stale entries are swept on put, live ones do not cost a sweep per put."""

from __future__ import annotations

import pytest

from reputation import passes
from reputation.passes import PassBook


def test_stale_entries_are_swept_when_the_book_grows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passes, "PRUNE_AT", 10)
    book = PassBook()
    for i in range(10):
        book.put_spent(f"old{i}", expires=50.0, now=0.0)
    assert len(book) == 10
    book.put_pass("1", "2", until=500.0, now=100.0)  # 11 > 10: the expired ids go
    assert len(book) == 1
    assert book.remembered("1", "2", 100.0)
    assert not book.is_spent("old0")


def test_live_entries_do_not_cost_a_sweep_per_put(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passes, "PRUNE_AT", 10)
    book = PassBook()
    sweeps = 0
    real = book.prune

    def counting(now: float) -> int:
        nonlocal sweeps
        sweeps += 1
        return real(now)

    monkeypatch.setattr(book, "prune", counting)
    for i in range(1000):
        book.put_divert(str(i), "2", "TN-Validation-Passed", until=1e9, now=0.0)
    assert len(book) == 1000
    assert sweeps <= 8  # thresholds 10, 22, 46, ... not one sweep per put past 10
