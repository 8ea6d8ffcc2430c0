"""The adaptive concurrency limit's arithmetic (schema/engine/limiter.py), on made-up times: no clock, no server."""

from __future__ import annotations

import math

from core.settings import Settings
from schema.engine.limiter import GradientLimit


def limit(**overrides: float) -> GradientLimit:
    options: dict = {"ceiling": 64, "floor": 2, "tolerance": 2.0, "now": 0.0, "window": 0.1, "min_samples": 10}
    options.update(overrides)
    return GradientLimit(**options)


class Clock:
    """Feeds a limiter windows of requests at a given latency and concurrency, 10 per 0.1 s window."""

    def __init__(self, limiter: GradientLimit) -> None:
        self.limiter = limiter
        self.now = 0.0

    def window(self, latency: float, running: int, samples: int = 10, *, overloaded: bool = False) -> None:
        start = self.now
        for number in range(1, samples + 1):
            self.now = start + 0.1 * number / samples + (1e-9 if number == samples else 0.0)
            self.limiter.observe(self.now, latency, running, overloaded=overloaded)


def test_it_starts_at_the_ceiling_or_where_told() -> None:
    assert GradientLimit(ceiling=64, floor=2, tolerance=2.0, now=0.0).allowed == 64
    assert GradientLimit(ceiling=8, floor=2, tolerance=2.0, now=0.0, initial=16).allowed == 8
    grown = GradientLimit(ceiling=64, floor=2, tolerance=2.0, now=0.0, initial=16)
    clock = Clock(grown)
    for _ in range(20):
        clock.window(0.010, running=grown.allowed)  # fast and used: it grows to the ceiling
    assert grown.allowed == 64


def test_it_learns_the_baseline_from_the_first_window() -> None:
    limiter = limit()
    assert limiter.allowed == 64 and limiter.baseline == math.inf
    Clock(limiter).window(0.020, running=1)
    assert math.isclose(limiter.baseline, 0.020) and math.isclose(limiter.last_mean, 0.020)
    assert limiter.allowed == 64  # unused (1 of 64 running) and fast: no change


def test_a_window_closes_only_after_its_time_and_its_samples() -> None:
    limiter = limit()
    for step in range(1, 10):  # 9 samples over a whole second: not enough samples
        limiter.observe(step * 0.1, 0.020, 1)
    assert limiter.baseline == math.inf
    limiter.observe(1.0, 0.020, 1)
    assert math.isclose(limiter.baseline, 0.020)
    for _ in range(50):  # 50 samples within 0.05 s: not enough time
        limiter.observe(1.05, 0.5, 64)
    assert math.isclose(limiter.baseline, 0.020) and limiter.allowed == 64


def test_latency_within_tolerance_keeps_the_limit_beyond_it_the_limit_shrinks_by_the_gradient() -> None:
    limiter = limit()
    clock = Clock(limiter)
    clock.window(0.020, running=1)
    clock.window(0.039, running=64)  # below 2x the baseline: gradient 1, at the ceiling already
    assert limiter.allowed == 64
    clock.window(0.060, running=64)  # 3x: gradient 2 x 0.020 / 0.060 = 2/3, applied at once
    gradient = 2 * limiter.baseline / 0.060  # the baseline as used: drifted up a little each window (below)
    assert math.isclose(gradient, 2 / 3 * 1.002**2)
    assert math.isclose(limiter.limit, 64 * gradient)
    assert math.isclose(limiter.baseline, 0.020 * 1.002**2)  # drifted up a little each window, not to the mean


def test_the_gradient_halves_the_limit_at_most_and_the_floor_holds() -> None:
    limiter = limit()
    clock = Clock(limiter)
    clock.window(0.010, running=1)
    clock.window(1.0, running=64)  # 100x slower: gradient kept at 0.5, limit 64 -> 32
    assert limiter.allowed == 32
    for _ in range(4):
        clock.window(1.0, running=limiter.allowed)
    assert limiter.allowed == 2  # 32, 16, 8, 4, 2: five windows from the ceiling
    for _ in range(30):
        clock.window(1.0, running=limiter.allowed)
    assert limiter.allowed == 2 and limiter.limit == 2.0  # CONCURRENCY_MIN


def test_it_grows_by_its_square_root_when_fast_and_used_and_not_when_unused() -> None:
    limiter = limit(floor=8)
    clock = Clock(limiter)
    clock.window(0.010, running=1)
    for _ in range(20):
        clock.window(0.100, running=64)
    assert limiter.limit == 8.0
    clock.window(0.010, running=3)  # fast again, but 3 running of 8 allowed: the limit was not used
    assert limiter.limit == 8.0
    clock.window(0.010, running=4)  # half of it: used
    assert math.isclose(limiter.limit, 8 + 0.5 * math.sqrt(8))
    for _ in range(40):
        clock.window(0.010, running=limiter.allowed)
    assert limiter.allowed == 64  # back to the ceiling, never above it


def test_a_slow_request_alone_leaves_the_limit_alone() -> None:
    """One slow report at a time (at most CONCURRENCY_MIN running): the limit did not make it slow."""
    limiter = limit()
    clock = Clock(limiter)
    clock.window(0.010, running=1)
    clock.window(0.500, running=1)
    clock.window(0.500, running=2)
    assert limiter.limit == 64.0


def test_slow_requests_below_the_limit_teach_it_from_what_ran() -> None:
    """8 clients at once under a limit of 64, each 4x slower than alone: no more than 8 x gradient may run, learnt
    before any jump in load (before, the limit stayed at 64 until half of it ran: the onset of an overload ran 64)."""
    limiter = limit()
    clock = Clock(limiter)
    clock.window(0.010, running=1)
    clock.window(0.040, running=8)  # gradient 2 x 0.010 / 0.040 = 0.5 (the baseline drifted up 0.2 %)
    assert math.isclose(limiter.limit, 8 * 2 * 0.010 * 1.002 / 0.040) and limiter.allowed == 4
    clock.window(0.300, running=30)  # a burst of 30 that ran slow: the limit is at most what ran, shrunk
    assert limiter.allowed == 2


def test_a_moderate_load_then_a_jump_finds_the_limit_low() -> None:
    """A process that overlaps about 2 requests (one event loop: n running take n x 5 ms each): 8 clients in a
    closed loop, then an open loop at 4x. The limit is where it should be before the jump: the jump's requests do
    not run 64 at once."""
    limiter = limit(ceiling=256)
    clock = Clock(limiter)
    clock.window(0.005, running=1)  # unloaded: one at a time
    for _ in range(10):  # 1 s of 8 clients: min(8, limit) run, each taking that many times 5 ms
        running = min(8, limiter.allowed)
        clock.window(0.005 * running, running=running)
    assert limiter.allowed <= 3
    for _ in range(10):  # the jump: as many as allowed run, at once
        running = limiter.allowed
        clock.window(0.005 * running, running=running)
        assert running <= 3  # 15 ms at most (3x alone), near the tolerance: never 64 nor the ceiling


def test_a_machine_that_became_slower_for_good_is_learnt_slowly() -> None:
    limiter = limit(floor=1)
    clock = Clock(limiter)
    clock.window(0.010, running=1)
    for _ in range(20):
        clock.window(0.050, running=limiter.allowed)
    assert limiter.allowed == 1  # 5x the first latency, whatever runs: down to the floor
    for _ in range(300):  # 30 s at the floor
        clock.window(0.050, running=1)
    assert limiter.allowed == 1 and limiter.baseline < 0.025  # the baseline rises 0.2 % a window: 1.002 ** 320
    for _ in range(600):
        clock.window(0.050, running=limiter.allowed)
    assert math.isclose(limiter.baseline, 0.050)  # it met the new mean (1.002 ** 806 = 5)
    assert limiter.allowed == 64  # and within 2x of it the limit grew back, window by window


def test_a_ceiling_below_the_floor_wins() -> None:
    limiter = limit(ceiling=2, floor=4)
    assert limiter.allowed == 2 and limiter.floor == 2
    clock = Clock(limiter)
    clock.window(0.010, running=1)
    clock.window(1.0, running=2)
    assert limiter.allowed == 2


def test_under_overload_the_stricter_tolerance_holds_and_the_limit_may_fall_to_one() -> None:
    """Two at once, each 1.8x slower than alone (one interpreter: they share the CPU): within CONCURRENCY_LATENCY_
    TOLERANCE (2.0), so a closed loop keeps them (throughput); under overload the accepted requests' latency counts,
    judged by CONCURRENCY_OVERLOAD_TOLERANCE (1.5 here, the old default; 1.0 now, below): one at a time, below
    CONCURRENCY_MIN."""
    limiter = limit(overload_tolerance=1.5)
    clock = Clock(limiter)
    clock.window(0.005, running=1)
    for _ in range(10):
        clock.window(0.009, running=min(2, limiter.allowed))
    assert limiter.limit == 64.0  # no more than 2 ran: the limit was not shown too low, nor too high
    limiter.limit, limiter.allowed = 2.0, 2  # as a closed loop of 2 would leave it
    clock.window(0.009, running=2, overloaded=True)  # 1.5 x 5 / 9 = 0.83: 2 x 0.83 = 1.67
    assert limiter.allowed == 1
    for _ in range(20):  # one at a time is still 1.6x slower than alone (the sheds share the loop): 1 is the floor
        clock.window(0.008, running=1, overloaded=True)
    assert limiter.allowed == 1
    assert 1.6 < limiter.limit < 1.75  # 2 x 1.5 x 5 / 9 (the baseline drifted a little): slow alone changed nothing
    clock.window(0.007, running=1, overloaded=True)  # within 1.5x with the one slot used: it grows (half its root)
    assert limiter.allowed == 2
    clock.window(0.012, running=2, overloaded=True)  # two at once: 2.4x, cut back
    assert limiter.allowed == 1
    clock.window(0.008, running=1)  # the overload has passed: CONCURRENCY_MIN again
    assert limiter.allowed == 2


def test_under_overload_by_default_one_runs_at_a_time_unless_a_second_costs_nothing() -> None:
    """The default CONCURRENCY_OVERLOAD_TOLERANCE (1.0): under overload a second request at once is kept only while
    it costs the accepted ones no latency. On MariaDB two at once each took 1.3-1.8x their time alone (they share
    the event loop's CPU; only the database's part overlaps): one at a time. It stays there while one alone runs
    a little above its best (noise), instead of growing back to two every other window as 1.5 did; a window as fast
    as the best seen lets a second one try again."""
    default = Settings.model_fields["concurrency_overload_tolerance"].default
    assert default == 1.0
    limiter = limit(overload_tolerance=default)
    clock = Clock(limiter)
    clock.window(0.005, running=1)  # the baseline: one alone
    limiter.limit, limiter.allowed = 2.0, 2  # as a closed loop of 2 would leave it
    clock.window(0.0065, running=2, overloaded=True)  # two at once, 1.3x: cut at once
    assert limiter.allowed == 1
    for latency in (0.0052, 0.0054, 0.0056, 0.0053, 0.0055):  # one alone, 4-12 % above its best
        clock.window(latency, running=1, overloaded=True)
        assert limiter.allowed == 1
    clock.window(0.0050, running=1, overloaded=True)  # as fast as the best seen: a second may try
    assert limiter.allowed == 2
    clock.window(0.0060, running=2, overloaded=True)  # it cost 1.2x: back to one
    assert limiter.allowed == 1
    same = limit(overload_tolerance=1.5)  # the old default, for contrast: 1.2x was within it, two kept running
    same_clock = Clock(same)
    same_clock.window(0.005, running=1)
    same.limit, same.allowed = 2.0, 2
    same_clock.window(0.0060, running=2, overloaded=True)
    assert same.allowed == 2


def test_the_overload_tolerance_is_never_looser_than_the_tolerance() -> None:
    assert limit(tolerance=1.5, overload_tolerance=3.0).overload_tolerance == 1.5
    assert limit(tolerance=2.0).overload_tolerance == 2.0  # not given: the same rule


def test_when_overload_begins_the_window_so_far_is_judged_at_once() -> None:
    limiter = limit(overload_tolerance=1.5)
    clock = Clock(limiter)
    clock.window(0.005, running=1)
    for number in range(5):  # half a window: 16 at once, each 4x slower than alone
        limiter.observe(clock.now + 0.01 * number, 0.020, 16)
    assert limiter.allowed == 64  # the window has not closed
    limiter.overload_began(clock.now + 0.05)
    assert limiter.allowed == 8  # min(64, 16) x the gradient, at most halved, at once
    assert limiter.baseline < 0.0051
    limiter.overload_began(clock.now + 0.06)  # nothing seen since: nothing judged
    assert limiter.allowed == 8
