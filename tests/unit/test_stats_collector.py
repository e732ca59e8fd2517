"""A report's groups are placed with the garbage collector paused, and only then."""

from __future__ import annotations

import gc

import pytest

from service.stats import collector_paused


def test_the_collector_runs_again_after_a_report_even_one_that_failed() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(KeyError), collector_paused():
        raise KeyError("a metric")
    assert gc.isenabled()


def test_a_collector_paused_by_someone_else_stays_paused() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
