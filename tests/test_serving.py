"""Start-up tuning before serving: start-up objects frozen, rarer young collections."""

from __future__ import annotations

import gc

from bot.factory import GC_YOUNG_THRESHOLD, settle_for_serving


def test_settle_for_serving_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        settle_for_serving()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, before[1], before[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
