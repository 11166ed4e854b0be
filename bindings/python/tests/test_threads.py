"""16 Python threads share one Engine: one winner per seat, all-or-nothing
holds under contention, concurrent payments that keep the money invariants,
engine calls made without the GIL, and close() racing with calls in flight."""

import random
import threading
import unittest

import concert
from support import EngineTestCase

THREADS = 16


def run_threads(target, count=THREADS):
    """Runs target(index, barrier) in `count` threads released together; re-raises the first error."""
    barrier = threading.Barrier(count)
    errors = []

    def body(index):
        try:
            target(index, barrier)
        except BaseException as e:  # noqa: B902 - reported to the test below
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        if t.is_alive():
            raise AssertionError("a thread is stuck (deadlock?)")
    if errors:
        raise errors[0]


class RaceTest(EngineTestCase):
    engine_options = {"max_active": THREADS, "max_holds_per_user": 64, "max_seats_per_user": 64}

    def setUp(self):
        super().setUp()
        self.tokens = [self.active_token(f"user-{i}") for i in range(THREADS)]

    def test_one_winner_per_seat(self):
        seats = range(1, 21)
        won = [[] for _ in range(THREADS)]
        lost = [0] * THREADS

        def race(i, barrier):
            order = list(seats)
            random.Random(i).shuffle(order)
            barrier.wait()
            for seat in order:
                try:
                    hold = self.engine.hold_seats(self.tokens[i], self.schedule_id, [seat])
                except concert.SeatUnavailable as e:
                    assert e.conflicts == (seat,), e.conflicts
                    lost[i] += 1
                else:
                    assert hold.seat_nos == (seat,) and hold.user_id == f"user-{i}"
                    won[i].append(seat)

        run_threads(race)
        winners = sorted(seat for w in won for seat in w)
        self.assertEqual(winners, list(seats))                  # every seat once, none twice
        self.assertEqual(sum(lost), len(seats) * (THREADS - 1))  # everyone else lost it
        self.assertTrue(all(s.state == "HELD" for s in self.engine.seats(self.schedule_id)))
        self.assertEqual(self.engine.stats()["hold"],
                         {"ok": len(seats), "seat_unavailable": len(seats) * (THREADS - 1)})
        # Every engine call read the clock after releasing the GIL ...
        self.assertEqual(self.clock._reads_holding_gil(), 0)
        # ... and the probe does see a read made with the GIL held (now() keeps it).
        self.engine.now()
        self.assertEqual(self.clock._reads_holding_gil(), 1)

    def test_all_or_nothing_under_contention(self):
        holds = [[] for _ in range(THREADS)]

        def race(i, barrier):
            rng = random.Random(100 + i)
            barrier.wait()
            for _ in range(30):
                wanted = rng.sample(range(1, 21), 3)
                try:
                    holds[i].append(self.engine.hold_seats(self.tokens[i], self.schedule_id, wanted))
                except concert.SeatUnavailable as e:
                    assert e.conflicts and set(e.conflicts) <= set(wanted), (e.conflicts, wanted)
                if holds[i] and rng.random() < 0.5:
                    victim = holds[i].pop(rng.randrange(len(holds[i])))
                    self.engine.release(self.tokens[i], victim.id)

        run_threads(race)
        live = [h for per_thread in holds for h in per_thread]
        held = [seat for h in live for seat in h.seat_nos]
        self.assertEqual(len(held), len(set(held)), "a seat is in two live holds")
        states = {s.seat_no: s.state for s in self.engine.seats(self.schedule_id)}
        self.assertEqual({n for n, st in states.items() if st == "HELD"}, set(held))
        for h in live:
            self.assertEqual(len(h.seat_nos), 3)

    def test_concurrent_payments_conserve_money(self):
        for i in range(THREADS):
            self.engine.charge(f"user-{i}", 500_000)
        payments = [None] * THREADS

        def race(i, barrier):
            barrier.wait()
            seat = 1 + i % 4          # four seats, sixteen buyers
            try:
                hold = self.engine.hold_seats(self.tokens[i], self.schedule_id, [seat])
            except concert.SeatUnavailable:
                return
            payments[i] = self.engine.pay(self.tokens[i], hold.id, idempotency_key=f"pay-{i}")
            again = self.engine.pay(self.tokens[i], hold.id, idempotency_key=f"pay-{i}")
            assert again == payments[i]

        run_threads(race)
        paid = [p for p in payments if p]
        self.assertEqual(sorted(p.seat_nos[0] for p in paid), [1, 2, 3, 4])
        audit = self.engine.audit()
        self.assertTrue(audit.ok, audit)
        self.assertEqual(audit.reservations, 4)
        self.assertEqual(audit.total_balance, THREADS * 500_000 - sum(p.amount for p in paid))


class CloseRaceTest(unittest.TestCase):
    def test_close_waits_for_calls_in_flight(self):
        engine = concert.Engine()
        engine.charge("u", 1)
        started = threading.Barrier(9)
        outcomes = []

        def hammer():
            started.wait()
            calls = 0
            try:
                while True:
                    engine.balance("u")
                    engine.history("u")
                    calls += 1
            except ValueError as e:
                outcomes.append((calls, str(e)))

        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for t in threads:
            t.start()
        started.wait()
        engine.close()
        for t in threads:
            t.join(60)
        self.assertEqual(len(outcomes), 8)
        self.assertTrue(all("closed" in message for _, message in outcomes), outcomes)


if __name__ == "__main__":
    unittest.main()
