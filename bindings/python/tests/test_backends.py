"""The booking flow on PostgreSQL (store) and Redis (queue), as the seed
runs it: several engines, as several API servers would hold, share them.

Needs the servers (ctest passes the ones tests/servers starts):
    CONCERT_TEST_PG_STORE     store URI, e.g. postgresql://concert@127.0.0.1:5432/concert
    CONCERT_TEST_REDIS_QUEUE  queue URI, e.g. redis://127.0.0.1:6379/0
Without them the file refuses to run (exit 2) rather than pass or skip.

The servers keep their data between runs, so every run uses fresh names.
"""

import datetime
import os
import sys
import threading
import unittest
import uuid

import concert

PG = os.environ.get("CONCERT_TEST_PG_STORE")
REDIS = os.environ.get("CONCERT_TEST_REDIS_QUEUE")
SECRET = b"python-binding-backend-test"
DAY = datetime.timedelta(days=1)


class SharedBackendFlowTest(unittest.TestCase):
    queue = REDIS

    def setUp(self):
        # Two engines on the same backends: two "API servers".
        self.a = concert.Engine(PG, self.queue, secret=SECRET, max_active=20)
        self.b = concert.Engine(PG, self.queue, secret=SECRET, max_active=20)
        self.addCleanup(self.a.close)
        self.addCleanup(self.b.close)
        self.run_id = uuid.uuid4().hex[:12]
        now = datetime.datetime.now(datetime.timezone.utc)
        self.concert_id = self.a.add_concert(f"py-{self.run_id}", now - DAY, now + 30 * DAY)
        self.schedule_id = self.a.add_schedule(self.concert_id, now + 7 * DAY, "Olympic Hall")
        self.a.add_seats(self.schedule_id, [(n, 1000 * n, "R") for n in range(1, 21)])

    def user(self, name):
        return f"py-{self.run_id}-{name}"

    def active(self, engine, user):
        status = engine.enter_queue(user, self.concert_id)
        if not status.active:
            status = engine.queue_status(status.token)
        self.assertTrue(status.active, status)
        return status.token

    def test_whole_flow_across_engines(self):
        a, b, sid = self.a, self.b, self.schedule_id
        self.assertTrue(a.health() and b.health())
        alice = self.user("alice")
        token = self.active(a, alice)
        self.assertEqual(b.enter_queue(alice, self.concert_id).created, False)   # same live token
        hold = b.hold_seats(token, sid, [1, 2])                                 # token from a, used on b
        with self.assertRaises(concert.SeatUnavailable) as caught:
            a.hold_seats(self.active(a, self.user("bob")), sid, [2, 3])
        self.assertEqual(caught.exception.conflicts, (2,))
        with self.assertRaises(concert.InsufficientFunds):
            a.pay(token, hold.id)
        self.assertEqual(a.charge(alice, 5000, idempotency_key=f"{self.run_id}-c"), 5000)
        self.assertEqual(b.charge(alice, 5000, idempotency_key=f"{self.run_id}-c"), 5000)
        payment = b.pay(token, hold.id, idempotency_key=f"{self.run_id}-p")
        self.assertEqual(a.pay(token, hold.id, idempotency_key=f"{self.run_id}-p"), payment)
        self.assertEqual((payment.amount, payment.balance), (3000, 2000))
        self.assertEqual([s.state for s in a.seats(sid)[:3]], ["RESERVED", "RESERVED", "AVAILABLE"])
        with self.assertRaises(concert.Expired):
            b.validate(token)
        self.assertEqual(a.cancel(alice, payment.reservation_id), concert.Cancellation(3000, 5000))
        self.assertEqual(b.reservation(payment.reservation_id).state, "CANCELLED")
        self.assertEqual([tx.kind for tx in b.history(alice)], ["REFUND", "PAYMENT", "CHARGE"])
        self.assertTrue(a.audit().ok)

    def test_threads_on_two_engines_one_winner_per_seat(self):
        tokens = [self.active(self.a, self.user(f"t{i}")) for i in range(16)]
        won, barrier, errors = [], threading.Barrier(16), []

        def race(i):
            engine = (self.a, self.b)[i % 2]
            try:
                barrier.wait()
                for seat in range(11, 21):
                    try:
                        engine.hold_seats(tokens[i], self.schedule_id, [seat])
                        won.append(seat)
                    except (concert.SeatUnavailable, concert.LimitExceeded):
                        pass
            except BaseException as e:  # noqa: B902 - reported below
                errors.append(e)

        threads = [threading.Thread(target=race, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        self.assertFalse(errors, errors)
        self.assertEqual(sorted(won), sorted(set(won)))
        held = {s.seat_no for s in self.b.seats(self.schedule_id) if s.state == "HELD"}
        self.assertEqual(held, set(won))


class PostgresQueueFlowTest(SharedBackendFlowTest):
    """The same with the queue in PostgreSQL too (no Redis)."""
    queue = None


def main():
    if not PG or not REDIS:
        print("set CONCERT_TEST_PG_STORE and CONCERT_TEST_REDIS_QUEUE to run", file=sys.stderr)
        return 2
    program = unittest.main(exit=False)
    return 0 if program.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
