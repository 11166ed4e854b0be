"""Shared set-up for the binding's tests: an engine on a manual clock with a
concert whose reservation window is open, and users admitted to its queue."""

import datetime
import os
import sys
import unittest

import concert

MINUTE = 60 * 1000
DAY = 24 * 60 * MINUTE

# The module under test must be the one this build made (PYTHONPATH), not a
# copy installed elsewhere.
if "CONCERT_BUILD_DIR" in os.environ and not concert.__file__.startswith(
        os.path.realpath(os.environ["CONCERT_BUILD_DIR"])):
    sys.exit(f"testing {concert.__file__}, not the module of {os.environ['CONCERT_BUILD_DIR']}")


class EngineTestCase(unittest.TestCase):
    """Each test gets a fresh memory engine on a manual clock and a catalog:
    one concert (window open for 30 days) with one schedule of 20 seats
    (1-10 VIP at 150000, 11-20 R at 99000)."""

    engine_options = {}

    def setUp(self):
        self.clock = concert.ManualClock(datetime.datetime(2030, 5, 1, 12, tzinfo=datetime.timezone.utc))
        options = dict(store="memory:", secret=b"test-secret", clock=self.clock)
        options.update(self.engine_options)
        self.engine = concert.Engine(**options)
        self.addCleanup(self.engine.close)
        now = self.clock.now()
        self.concert_id = self.engine.add_concert("Spring Tour", now - MINUTE, now + 30 * DAY)
        self.schedule_id = self.engine.add_schedule(self.concert_id, now + 7 * DAY, "Olympic Hall")
        self.engine.add_seats(self.schedule_id,
                              [(n, 150000, "VIP") for n in range(1, 11)]
                              + [(n, 99000, "R") for n in range(11, 21)])

    def active_token(self, user_id, concert_id=None):
        """Enters ``user_id`` in the queue and returns its ACTIVE token."""
        status = self.engine.enter_queue(user_id, concert_id or self.concert_id)
        if status.state != concert.QueueState.ACTIVE:
            status = self.engine.queue_status(status.token)
        self.assertEqual(status.state, concert.QueueState.ACTIVE, status)
        return status.token

    def snapshot(self):
        """Everything a call could change: to show a rejected call changed nothing."""
        return (self.engine.seats(self.schedule_id), self.engine.schedules(self.concert_id),
                self.engine.concerts(), self.engine.audit())
