"""The whole booking flow through the Python API on the memory backend:
catalog -> queue -> hold -> charge -> pay -> cancel, plus expiry, extension,
history paging, token checks, durability and the engine's life cycle."""

import datetime
import gc
import os
import shutil
import tempfile
import unittest

import concert
from support import DAY, MINUTE, EngineTestCase


class FlowTest(EngineTestCase):
    engine_options = {"max_active": 1}

    def test_whole_flow(self):
        e = self.engine
        [c] = e.concerts()
        self.assertEqual((c.id, c.title), (self.concert_id, "Spring Tour"))
        self.assertEqual(e.concert(self.concert_id), c)
        [s] = e.schedules(self.concert_id)
        self.assertEqual((s.venue, s.total_seats, s.available_seats, s.held_seats, s.reserved_seats),
                         ("Olympic Hall", 20, 20, 0, 0))
        seats = e.seats(self.schedule_id)
        self.assertEqual([x.seat_no for x in seats], list(range(1, 21)))
        self.assertTrue(all(x.state == "AVAILABLE" for x in seats))
        self.assertEqual((seats[0].grade, seats[0].price), ("VIP", 150000))

        # Queue: max_active=1, so the second user waits behind the first.
        alice = e.enter_queue("alice", self.concert_id)
        self.assertTrue(alice.created)
        self.assertEqual(alice.state, concert.QueueState.ACTIVE)
        self.assertEqual(e.enter_queue("alice", self.concert_id).token_id, alice.token_id)
        self.assertFalse(e.enter_queue("alice", self.concert_id).created)
        bob = e.enter_queue("bob", self.concert_id)
        self.assertEqual((bob.state, bob.position), (concert.QueueState.WAITING, 1))
        self.assertGreater(bob.estimated_wait_seconds, 0)
        with self.assertRaises(concert.TokenNotActive):
            e.hold_seats(bob.token, self.schedule_id, [3])
        self.assertEqual(e.validate(alice.token, self.concert_id).user_id, "alice")

        # Hold, charge, pay.
        hold = e.hold_seats(alice.token, self.schedule_id, [2, 1])
        self.assertEqual((hold.seat_nos, hold.amount, hold.state, hold.user_id),
                         ((1, 2), 300000, concert.HoldState.HELD, "alice"))
        self.assertEqual(hold.expires_at - hold.created_at, 5 * MINUTE)
        self.assertEqual(e.hold(alice.token, hold.id), hold)
        self.assertEqual(e.schedule(self.schedule_id).held_seats, 2)
        with self.assertRaises(concert.InsufficientFunds):
            e.pay(alice.token, hold.id)
        self.assertEqual(e.charge("alice", 200000, idempotency_key="c-1"), 200000)
        self.assertEqual(e.charge("alice", 200000, idempotency_key="c-1"), 200000)  # no second effect
        self.assertEqual(e.charge("alice", 150000), 350000)
        payment = e.pay(alice.token, hold.id, idempotency_key="p-1")
        self.assertEqual((payment.amount, payment.balance, payment.seat_nos, payment.hold_id),
                         (300000, 50000, (1, 2), hold.id))
        self.assertEqual(e.pay(alice.token, hold.id, idempotency_key="p-1"), payment)
        self.assertEqual(e.balance("alice"), 50000)
        self.assertEqual(e.hold(alice.token, hold.id).state, concert.HoldState.PAID)
        reservation = e.reservation(payment.reservation_id)
        self.assertEqual((reservation.state, reservation.seat_nos, reservation.amount, reservation.user_id),
                         (concert.ReservationState.CONFIRMED, (1, 2), 300000, "alice"))
        self.assertEqual([x.state for x in e.seats(self.schedule_id)[:3]],
                         [concert.SeatState.RESERVED, concert.SeatState.RESERVED,
                          concert.SeatState.AVAILABLE])
        # Paying made alice's token DONE, which frees the ACTIVE slot for bob.
        with self.assertRaises(concert.Expired):
            e.validate(alice.token)
        bob = e.queue_status(bob.token)
        self.assertEqual(bob.state, concert.QueueState.ACTIVE)
        with self.assertRaises(concert.SeatUnavailable) as caught:
            e.hold_seats(bob.token, self.schedule_id, [2, 3])
        self.assertEqual(caught.exception.conflicts, (2,))

        # Cancel: refund, seats available again.
        cancellation = e.cancel("alice", payment.reservation_id)
        self.assertEqual(cancellation, concert.Cancellation(refunded=300000, balance=350000))
        self.assertEqual(e.reservation(payment.reservation_id).state, concert.ReservationState.CANCELLED)
        self.assertEqual(e.schedule(self.schedule_id).available_seats, 20)
        kinds = [tx.kind for tx in e.history("alice")]
        self.assertEqual(kinds, ["REFUND", "PAYMENT", "CHARGE", "CHARGE"])

        audit = e.audit()
        self.assertTrue(audit.ok, audit)
        self.assertEqual((audit.total_charges, audit.total_balance), (350000, 350000))
        stats = e.stats()
        self.assertEqual(stats["pay"], {"ok": 2, "insufficient_funds": 1})
        self.assertEqual(stats["cancel"], {"ok": 1})
        self.assertTrue(e.health())

    def test_hold_expires_on_the_clock(self):
        e = self.engine
        token = self.active_token("carol")
        hold = e.hold_seats(token, self.schedule_id, [5])
        e.charge("carol", 1_000_000)
        self.clock.advance(datetime.timedelta(minutes=5, milliseconds=1))
        self.assertEqual(e.seats(self.schedule_id)[4].state, concert.SeatState.AVAILABLE)
        self.assertEqual(e.hold(token, hold.id).state, concert.HoldState.EXPIRED)
        with self.assertRaises(concert.Expired):
            e.pay(token, hold.id)
        self.assertEqual(e.balance("carol"), 1_000_000)
        self.assertGreaterEqual(e.sweep(), 0)

    def test_extend_and_partial_release(self):
        e = self.engine
        token = self.active_token("dave")
        hold = e.hold_seats(token, self.schedule_id, [11, 12, 13])
        self.clock.advance(4 * MINUTE)
        extended = e.extend_hold(token, hold.id)
        self.assertEqual((extended.extensions, extended.expires_at),
                         (1, self.clock.now() + 5 * MINUTE))
        e.release(token, hold.id, [12])
        after = e.hold(token, hold.id)
        self.assertEqual((after.seat_nos, after.amount), ((11, 13), 2 * 99000))
        e.release(token, hold.id)
        self.assertEqual(e.hold(token, hold.id).state, concert.HoldState.RELEASED)
        self.assertEqual(e.schedule(self.schedule_id).available_seats, 20)

    def test_queue_heartbeat_leave_and_admit(self):
        e = self.engine
        first = e.enter_queue("erin", self.concert_id)
        second = e.enter_queue("frank", self.concert_id)
        self.assertEqual(second.state, concert.QueueState.WAITING)
        self.clock.advance(4 * MINUTE)
        self.assertEqual(e.heartbeat(second.token).state, concert.QueueState.WAITING)
        self.clock.advance(4 * MINUTE)   # 8 min since entering, 4 since the heartbeat
        self.assertEqual(e.queue_status(second.token).position, 1)
        e.leave_queue(first.token)
        with self.assertRaises(concert.Expired):
            e.queue_status(first.token)
        self.assertGreaterEqual(e.admit(self.concert_id), 0)   # queue calls admit too
        self.assertTrue(e.queue_status(second.token).active)
        self.clock.advance(10 * MINUTE + 1)   # active_ttl passed
        with self.assertRaises(concert.Expired):
            e.validate(e.queue_status(second.token).token)

    def test_history_pages(self):
        e = self.engine
        for i in range(1, 8):
            e.charge("gina", i)
        page = e.history("gina", limit=3)
        self.assertEqual([tx.amount for tx in page], [7, 6, 5])
        self.assertIsNotNone(page.next_cursor)
        page2 = e.history("gina", cursor=page.next_cursor, limit=3)
        self.assertEqual([tx.amount for tx in page2], [4, 3, 2])
        self.assertEqual([tx.amount for tx in e.iter_history("gina", page_size=2)],
                         [7, 6, 5, 4, 3, 2, 1])
        self.assertEqual(e.history("nobody"), concert.HistoryPage((), None))

    def test_verify_token_like_an_edge(self):
        token = self.active_token("hana")
        now = self.clock.now()
        claims = concert.verify_token(token, b"test-secret", self.concert_id, now=now)
        self.assertEqual((claims.user_id, claims.kind), ("hana", concert.TokenKind.ACTIVE))
        self.assertEqual(concert.verify_token(token, "test-secret", now=now), claims)
        with self.assertRaises(concert.InvalidToken):
            concert.verify_token(token, b"another-secret", now=now)
        with self.assertRaises(concert.InvalidToken):
            concert.verify_token(token, b"test-secret", self.concert_id + 1, now=now)
        with self.assertRaises(concert.Expired):
            concert.verify_token(token, b"test-secret", now=claims.active_until)

    def test_datetimes_and_seat_specs(self):
        e = self.engine
        opens = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
        cid = e.add_concert("Autumn", opens, opens + datetime.timedelta(days=300))
        self.assertEqual(concert.to_datetime(e.concert(cid).opens_at), opens)
        sid = e.add_schedule(cid, opens + datetime.timedelta(days=10))
        e.add_seats(sid, [concert.SeatSpec(1, 10, "A"), {"seat_no": 2, "price": 20, "grade": "B"}])
        self.assertEqual([(s.seat_no, s.grade, s.price) for s in e.seats(sid)], [(1, "A", 10), (2, "B", 20)])
        self.assertEqual(e.schedule(sid).venue, "")


class LifeCycleTest(unittest.TestCase):
    def test_context_manager_and_closed_engine(self):
        with concert.Engine() as engine:
            self.assertFalse(engine.closed)
            self.assertIn("open", repr(engine))
        self.assertTrue(engine.closed)
        engine.close()   # idempotent
        with self.assertRaisesRegex(ValueError, "closed"):
            engine.balance("x")

    def test_garbage_collected_engine_is_closed(self):
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        engine = concert.Engine(f"memory:{directory}")
        engine.charge("x", 5)
        del engine
        gc.collect()
        # The journal directory is locked while an engine has it open.
        with concert.Engine(f"memory:{directory}") as again:
            self.assertEqual(again.balance("x"), 5)

    def test_durable_store_survives_reopen(self):
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        clock = concert.ManualClock()
        uri = f"memory:{directory}?fsync=batch"
        with concert.Engine(uri, clock=clock, secret=b"s") as engine:
            cid = engine.add_concert("Durable", clock.now() - 1, clock.now() + DAY)
            sid = engine.add_schedule(cid, clock.now() + DAY, "Hall")
            engine.add_seats(sid, [(1, 100, "R"), (2, 100, "R")])
            engine.charge("ivan", 500, idempotency_key="k")
            token = engine.enter_queue("ivan", cid).token
            paid = engine.pay(token, engine.hold_seats(token, sid, [2]).id)
            engine.compact()
        with concert.Engine(uri, clock=clock, secret=b"s") as engine:
            self.assertEqual(engine.balance("ivan"), 400)
            self.assertEqual(engine.charge("ivan", 500, idempotency_key="k"), 500)  # replayed key
            self.assertEqual(engine.reservation(paid.reservation_id).seat_nos, (2,))
            self.assertTrue(engine.audit().ok)
        self.assertTrue(os.listdir(directory))

    def test_manual_clock_shared_by_engines(self):
        clock = concert.ManualClock(1000)
        one, two = concert.Engine(clock=clock), concert.Engine(clock=clock)
        clock.advance(500)
        self.assertEqual((one.now(), two.now()), (1500, 1500))
        one.close()
        del clock   # the engines keep the C clock alive
        gc.collect()
        self.assertEqual(two.now(), 1500)
        two.close()

    def test_module_surface(self):
        self.assertEqual(concert.__version__, concert.capi.CONCERT_VERSION)
        for name in concert.__all__:
            obj = getattr(concert, name)
            self.assertTrue(obj.__doc__, f"concert.{name} has no docstring")
        for name, member in vars(concert.Engine).items():
            if not name.startswith("_") and callable(member):
                self.assertTrue(member.__doc__, f"Engine.{name} has no docstring")
        self.assertIn("hold_seats", concert.Engine.__doc__ + "".join(
            m.__doc__ or "" for m in vars(concert.Engine).values() if callable(m)))


if __name__ == "__main__":
    unittest.main()
