"""No leak across the boundary: 100,000 calls, successes and failures of
every result shape, keep the process's resident set flat.

A leak of even the smallest returned struct or of one Python object per
failed call would add megabytes over the run; the bound leaves room only
for allocator noise."""

import gc
import os
import unittest

import concert
from support import EngineTestCase

CALLS = 100_000
BOUND = 1024 * 1024   # bytes of RSS growth allowed after the warm-up


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class LeakTest(EngineTestCase):
    engine_options = {"max_active": 4}

    def test_calls_keep_rss_flat(self):
        e, sid = self.engine, self.schedule_id
        alice, bob = self.active_token("alice"), self.active_token("bob")
        e.charge("alice", 10, idempotency_key="once")
        hold = e.hold_seats(alice, sid, [1, 2])

        # Twelve calls per round, seven of them failing (an exception, its
        # message and its conflicts are built per failure). None of them
        # grows the store, so any growth would be the binding's.
        def one_round():
            e.balance("alice")
            e.seats(sid)
            e.hold(alice, hold.id)
            e.queue_status(alice)
            e.history("alice")
            for wanted, conflicts in (([2, 3], (2,)), ([1, 2, 4], (1, 2)), ([5, 1], (1,))):
                try:
                    e.hold_seats(bob, sid, wanted)
                except concert.SeatUnavailable as exc:
                    assert exc.conflicts == conflicts
            try:
                e.pay(alice, hold.id)
            except concert.InsufficientFunds:
                pass
            try:
                e.charge("alice", 11, idempotency_key="once")
            except concert.IdempotencyConflict:
                pass
            try:
                e.reservation(999)
            except concert.NotFound:
                pass
            try:
                e.queue_status("forged")
            except concert.InvalidToken:
                pass

        rounds = -(-CALLS // 12)
        for _ in range(rounds // 5):   # warm-up: caches, allocator arenas
            one_round()
        gc.collect()
        before = rss_bytes()
        for _ in range(rounds):
            one_round()
        gc.collect()
        growth = rss_bytes() - before
        self.assertLess(growth, BOUND, f"RSS grew by {growth} bytes over {CALLS} calls")
        self.assertEqual(e.stats()["pay"]["insufficient_funds"], rounds + rounds // 5)

    def test_engines_and_clocks_are_freed(self):
        def cycle():
            clock = concert.ManualClock(0)
            with concert.Engine(clock=clock) as engine:
                engine.charge("u", 1)
            concert.Engine().charge("v", 1)   # closed by garbage collection

        for _ in range(200):
            cycle()
        gc.collect()
        before = rss_bytes()
        for _ in range(2000):
            cycle()
        gc.collect()
        growth = rss_bytes() - before
        self.assertLess(growth, BOUND, f"RSS grew by {growth} bytes over 2000 engines")


if __name__ == "__main__":
    unittest.main()
