"""Bad arguments raise TypeError (wrong type) or concert.InvalidArgument (a
ValueError; wrong value) and change nothing. Those the binding can judge
never reach the library: the engine's call counters do not move."""

import datetime
import unittest

import concert
from concert import capi
from support import EngineTestCase

INT64_MAX = 2**63 - 1


class ArgumentTest(EngineTestCase):
    def setUp(self):
        super().setUp()
        self.token = self.active_token("alice")
        self.engine.charge("alice", 1000)
        self.hold = self.engine.hold_seats(self.token, self.schedule_id, [1])

    def rejected(self, exc_class, fn, *args, **kwargs):
        """fn(*args) raises exc_class, reaches no library call and changes nothing."""
        before, stats = self.snapshot(), self.engine.stats()
        with self.assertRaises(exc_class, msg=f"{fn.__name__}{args}{kwargs}"):
            fn(*args, **kwargs)
        self.assertEqual(self.engine.stats(), stats, f"{fn.__name__}{args} reached the library")
        self.assertEqual(self.snapshot(), before)

    def test_charge(self):
        charge = self.engine.charge
        for user in (None, 42, b"alice", ["alice"]):
            self.rejected(TypeError, charge, user, 100)
        for user in ("", "x" * 65, "a\0b", "\u00e9" * 33):   # 66 bytes of UTF-8
            self.rejected(concert.InvalidArgument, charge, user, 100)
        for amount in (None, 1.5, 100.0, "100", True, [100]):
            self.rejected(TypeError, charge, "alice", amount)
        for amount in (0, -1, -100, 2**63, -(2**70)):
            self.rejected(concert.InvalidArgument, charge, "alice", amount)
        self.rejected(TypeError, charge, "alice", 100, idempotency_key=7)
        self.rejected(concert.InvalidArgument, charge, "alice", 100, idempotency_key="")
        self.rejected(concert.InvalidArgument, charge, "alice", 100, idempotency_key="k" * 65)
        self.rejected(ValueError, charge, "alice", -5)   # InvalidArgument is a ValueError
        self.assertEqual(self.engine.balance("alice"), 1000)

    def test_holds(self):
        e, token, sid = self.engine, self.token, self.schedule_id
        self.rejected(TypeError, e.hold_seats, None, sid, [2])
        self.rejected(TypeError, e.hold_seats, 12345, sid, [2])
        self.rejected(TypeError, e.hold_seats, token, str(sid), [2])
        self.rejected(TypeError, e.hold_seats, token, None, [2])
        self.rejected(concert.InvalidArgument, e.hold_seats, token, -1, [2])
        self.rejected(concert.InvalidArgument, e.hold_seats, token, 0, [2])
        for seats in (None, 2, "23", b"\x02", [2.0], [None], [True], [[2]]):
            self.rejected(TypeError, e.hold_seats, token, sid, seats)
        for seats in ([], [0], [-3], [2, 2], list(range(1, 66)), [2**31]):
            self.rejected(concert.InvalidArgument, e.hold_seats, token, sid, seats)
        self.rejected(TypeError, e.release, token, str(self.hold.id))
        self.rejected(concert.InvalidArgument, e.release, token, self.hold.id, [])
        self.rejected(concert.InvalidArgument, e.extend_hold, token, -self.hold.id)
        self.rejected(TypeError, e.pay, token, self.hold.id, idempotency_key=b"k")
        self.rejected(concert.InvalidArgument, e.pay, token, 0)
        self.rejected(concert.InvalidArgument, e.hold_seats, "tok\0en", sid, [2])
        self.assertEqual(e.hold(token, self.hold.id).seat_nos, (1,))
        # Generators and tuples are fine.
        self.assertEqual(e.hold_seats(token, sid, (n for n in (3, 2))).seat_nos, (2, 3))

    def test_catalog(self):
        e, now = self.engine, self.clock.now()
        self.rejected(TypeError, e.add_concert, None, now, now + 1)
        self.rejected(concert.InvalidArgument, e.add_concert, "", now, now + 1)
        self.rejected(concert.InvalidArgument, e.add_concert, "t" * 201, now, now + 1)
        self.rejected(concert.InvalidArgument, e.add_concert, "T", now, now)
        self.rejected(TypeError, e.add_concert, "T", "2030-01-01", now)
        self.rejected(concert.InvalidArgument, e.add_concert, "T",
                      datetime.datetime(2030, 1, 1), datetime.datetime(2030, 2, 1))   # naive
        self.rejected(TypeError, e.add_schedule, None, now)
        self.rejected(TypeError, e.add_schedule, self.concert_id, now, 5)
        self.rejected(concert.InvalidArgument, e.add_schedule, self.concert_id, now, "v" * 121)
        sid = self.schedule_id
        for seats in (None, "1,2", 5, [(21, 10)], [21], [object()]):
            self.rejected(TypeError, e.add_seats, sid, seats)
        for seats in ([], [(21, -5, "R")], [(21, 0, "R")], [(0, 5, "R")], [(21, 5, "")],
                      [(21, 5, "G" * 16)], [(21, 5, "R"), (21, 6, "R")], [{"seat_no": 21}]):
            self.rejected(concert.InvalidArgument, e.add_seats, sid, seats)
        self.rejected(TypeError, e.add_seats, sid, [(21, 5.0, "R")])
        self.rejected(TypeError, e.seats, "1")
        self.rejected(concert.InvalidArgument, e.schedules, -1)

    def test_queue_wallet_reservation(self):
        e = self.engine
        self.rejected(TypeError, e.enter_queue, None, self.concert_id)
        self.rejected(TypeError, e.enter_queue, "bob", None)
        self.rejected(concert.InvalidArgument, e.enter_queue, "bob", 0)
        self.rejected(TypeError, e.queue_status, None)
        self.rejected(TypeError, e.heartbeat, b"token")
        self.rejected(TypeError, e.leave_queue, 1)
        self.rejected(concert.InvalidArgument, e.validate, self.token, -1)
        self.rejected(TypeError, e.balance, None)
        self.rejected(concert.InvalidArgument, e.history, "alice", limit=0)
        self.rejected(concert.InvalidArgument, e.history, "alice", limit=1001)
        self.rejected(concert.InvalidArgument, e.history, "alice", cursor=-1)
        self.rejected(TypeError, e.history, "alice", limit="10")
        self.rejected(TypeError, e.cancel, None, 1)
        self.rejected(concert.InvalidArgument, e.cancel, "alice", 0)
        self.rejected(TypeError, e.reservation, 1.0)


class OptionsTest(unittest.TestCase):
    def test_engine_options(self):
        for kwargs in ({"store": None}, {"store": 5}, {"queue": 5}, {"secret": 5},
                       {"max_active": "5"}, {"max_active": 1.0}, {"hold_ttl": "1m"},
                       {"clock": lambda: 0}, {"clock": 5}):
            with self.assertRaises(TypeError, msg=kwargs):
                concert.Engine(**kwargs)
        for kwargs in ({"store": ""}, {"secret": b""}, {"max_active": -1}, {"max_active": 2**32},
                       {"hold_ttl": -1}, {"hold_ttl": datetime.timedelta(seconds=-1)},
                       {"hold_ttl": 10, "hold_max_lifetime": 5}, {"store": "memory:?fsync=sometimes"}):
            with self.assertRaises(concert.InvalidArgument, msg=kwargs):
                concert.Engine(**kwargs)
        with concert.Engine(hold_ttl=datetime.timedelta(minutes=2), secret="text secret") as e:
            self.assertTrue(e.health())

    def test_module_functions(self):
        with self.assertRaises(TypeError):
            concert.verify_token(None, b"s")
        with self.assertRaises(TypeError):
            concert.verify_token("t", None)
        with self.assertRaises(concert.InvalidArgument):
            concert.verify_token("t", b"s", -1)
        with self.assertRaises(TypeError):
            concert.ManualClock("yesterday")
        with self.assertRaises(TypeError):
            concert.ManualClock(0).advance("1s")
        with self.assertRaises(TypeError):
            concert.to_datetime(None)


class LowLevelGuardTest(EngineTestCase):
    """concert.capi is internal, but its typemaps still refuse what C cannot take."""

    def test_typemaps(self):
        h, c = self.engine._handle, capi._capi
        token = self.active_token("alice")
        before = self.snapshot()
        with self.assertRaises(TypeError):
            c.concert_hold_seats(h, token, self.schedule_id, [1.5])
        with self.assertRaises(TypeError):
            c.concert_hold_seats(h, token, self.schedule_id, "12")
        with self.assertRaises(OverflowError):
            c.concert_hold_seats(h, token, self.schedule_id, [2**40])
        with self.assertRaises(ValueError):
            c.concert_wallet_charge(h, "al\0ice", 5, None)
        with self.assertRaises(TypeError):
            c.concert_wallet_charge(h, b"alice", 5, None)
        with self.assertRaises(TypeError):
            c.concert_wallet_charge(object(), "alice", 5, None)
        with self.assertRaises(TypeError):
            c.concert_seats_add(h, self.schedule_id, [(30, 5)])
        # None passes NULL, which the library itself rejects.
        with self.assertRaises(concert.InvalidArgument):
            c.concert_wallet_charge(h, None, 5, None)
        with self.assertRaises(concert.InvalidArgument):
            c.concert_wallet_charge(h, "alice", -5, None)
        with self.assertRaises(concert.InvalidArgument):
            c.concert_hold_seats(h, token, self.schedule_id, [])
        self.assertEqual(self.snapshot(), before)


if __name__ == "__main__":
    unittest.main()
