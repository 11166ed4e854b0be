"""Two server instances sharing PostgreSQL (store) and Redis (queue + lock).

500 concurrent clients, spread over both instances, enter the queue, charge
their wallets and race for the 50 seats of schedule 1; one instance is
killed with SIGKILL in the middle and its clients fail over to the other.
Afterwards: one reservation per seat, every acknowledged payment and charge
is there, and money is conserved (the library's audit over the database,
read by a third instance).

Needs CONCERT_TEST_PG_URI and CONCERT_TEST_REDIS_URI (the ctest fixtures
"postgres" and "redis" set them when those backends are built); refuses to
run (exit 2) without them. Each run uses a fresh PostgreSQL schema and Redis
key prefix. CONCERT_HTTP_MULTI_CLIENTS overrides the number of clients.
"""
import http.client
import os
import random
import socket
import sys
import threading
import time
import unittest
import uuid

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PG = os.environ.get("CONCERT_TEST_PG_URI")
REDIS = os.environ.get("CONCERT_TEST_REDIS_URI")
CLIENTS = int(os.environ.get("CONCERT_HTTP_MULTI_CLIENTS", "500"))
DEADLINE_S = 240
CHARGE = 200000
SCHED = 1

NETWORK_ERRORS = (ConnectionError, http.client.HTTPException, socket.timeout, OSError)


def with_option(uri, option):
    return uri + ("&" if "?" in uri else "?") + option


class Outcome:
    def __init__(self, uid):
        self.uid = uid
        self.charged = 0
        self.paid = []          # (reservationId, seatNo, amount)
        self.uncertain = False  # a request whose outcome no instance could tell
        self.error = None


class Killer:
    """SIGKILLs an instance after the 10th acknowledged payment: mid-load."""

    def __init__(self, server):
        self.server = server
        self.lock = threading.Lock()
        self.count = 0
        self.killed_at = None
        self.count_at_kill = 0

    def payment_acknowledged(self):
        with self.lock:
            self.count += 1
            if self.count == 10 and self.killed_at is None:
                self.server.proc.kill()
                self.killed_at = time.monotonic()
                self.count_at_kill = self.count


class MultiInstanceTest(unittest.TestCase):
    def setUp(self):
        run = uuid.uuid4().hex[:10]
        self.store = with_option(PG, "schema=http_multi_" + run)
        self.queue = with_option(REDIS, "prefix=http_multi_%s:" % run)
        self.secret = uuid.uuid4().hex + uuid.uuid4().hex
        common = ("--store", self.store, "--queue", self.queue, "--lock", self.queue,
                  "--secret", self.secret, "--max-active", "100", "--access-log", "off")
        self.common = common
        # One instance seeds; the other starts once the catalog exists.
        self.a = harness.Server(*common, demo=True, test_clock=False)
        self.b = harness.Server(*common, demo=False, test_clock=False)
        self.ports = [self.a.port, self.b.port]

    def tearDown(self):
        self.b.kill()
        self.a.assert_clean_stop(self)

    # ---- one client ---------------------------------------------------------------

    def call(self, clients, order, method, path, outcome, **kw):
        """Sends to the preferred instance, then the other one on a network
        error. Payments and charges carry an Idempotency-Key, so a retry
        cannot take money twice."""
        for i in order:
            try:
                return clients[i].request(method, path, **kw)
            except NETWORK_ERRORS:
                clients[i].close()
        outcome.uncertain = True
        return None

    def client(self, n, kills, outcome):
        clients = [harness.Client(p, timeout=30) for p in self.ports]
        order = [n % 2, 1 - n % 2]
        uid = outcome.uid
        try:
            r = self.call(clients, order, "POST", "/v1/queue/tokens", outcome,
                          body={"userId": uid, "concertId": 1})
            if r is None or r.status not in (200, 201):
                outcome.error = r
                return
            token = r.json()["token"]
            charge_key = "charge-" + uid
            r = self.call(clients, order, "POST", "/v1/wallets/%s/charge" % uid, outcome,
                          body={"amount": CHARGE}, key=charge_key)
            if r is not None and r.status == 200:
                outcome.charged = CHARGE
            if n % 5 == 4:
                # Charges mixed in: another one, sent twice with its key.
                answers = [self.call(clients, order, "POST", "/v1/wallets/%s/charge" % uid,
                                     outcome, body={"amount": 1000}, key="extra-" + uid)
                           for _ in range(2)]
                if any(a is not None and a.status == 200 for a in answers):
                    outcome.charged += 1000
            deadline = time.monotonic() + DEADLINE_S / 2
            status = "WAITING"
            while time.monotonic() < deadline:
                r = self.call(clients, order, "GET", "/v1/queue/tokens/me", outcome, token=token)
                if r is None or r.status != 200:
                    return
                me = r.json()
                token, status = me["token"], me["status"]
                if status != "WAITING":
                    break
                time.sleep(0.05 + random.random() * 0.1)
            if status != "ACTIVE":
                return
            try:
                for _ in range(5):
                    r = self.call(clients, order, "GET", "/v1/schedules/%d/seats" % SCHED, outcome)
                    if r is None:
                        return
                    free = [s["seatNo"] for s in r.json() if s["status"] == "AVAILABLE"]
                    if not free:
                        return
                    r = self.call(clients, order, "POST", "/v1/holds", outcome, token=token,
                                  body={"scheduleId": SCHED, "seatNos": [random.choice(free)]})
                    if r is None or r.status == 409:
                        continue
                    if r.status != 201:
                        return
                    hold = r.json()
                    r = self.call(clients, order, "POST", "/v1/payments", outcome, token=token,
                                  body={"holdId": hold["holdId"]}, key="pay-" + uid)
                    if r is not None and r.status == 201:
                        p = r.json()
                        outcome.paid.append((p["reservationId"], hold["seatNos"][0], p["amount"]))
                        kills.payment_acknowledged()
                    return
            finally:
                if not outcome.paid:
                    self.call(clients, order, "DELETE", "/v1/queue/tokens/me", outcome, token=token)
        except Exception as e:  # reported by the test, not swallowed
            outcome.error = e
        finally:
            for c in clients:
                c.close()

    # ---- the test ---------------------------------------------------------------------

    def test_500_clients_two_instances_one_killed(self):
        outcomes = [Outcome("multi-%d-%s" % (n, uuid.uuid4().hex[:6])) for n in range(CLIENTS)]
        kills = Killer(self.b)
        threads = [threading.Thread(target=self.client, args=(n, kills, outcomes[n]))
                   for n in range(CLIENTS)]
        for t in threads:
            t.start()
        end = time.monotonic() + DEADLINE_S
        for t in threads:
            t.join(max(0.1, end - time.monotonic()))
        self.assertFalse(any(t.is_alive() for t in threads), "clients still running")
        self.assertIsNotNone(kills.killed_at, "instance B was never killed")
        errors = [o.error for o in outcomes if o.error is not None]
        self.assertEqual(errors, [])

        acked_total = sum(len(o.paid) for o in outcomes)
        print("\n%d clients: %d payments acknowledged, %d with an outcome no instance could "
              "tell, instance B killed after payment %d" % (
                  CLIENTS, acked_total, sum(o.uncertain for o in outcomes), kills.count_at_kill))
        c = self.a.client()
        self.assertEqual(c.get("/health").status, 200)
        seats = {s["seatNo"]: s["status"] for s in c.get("/v1/schedules/%d/seats" % SCHED).json()}
        acked = [(o.uid, p) for o in outcomes for p in o.paid]
        acked_seats = [p[1] for _, p in acked]
        self.assertEqual(len(acked_seats), len(set(acked_seats)), "a seat was sold twice")
        self.assertGreaterEqual(len(acked), 40, "too few payments went through")
        for uid, (reservation, seat, _) in acked:
            self.assertEqual(seats[seat], "RESERVED")
            r = c.get("/v1/reservations/%d?userId=%s" % (reservation, uid))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["seatNos"], [seat])
        for o in outcomes:
            if o.uncertain:
                continue
            expected = o.charged - sum(p[2] for p in o.paid)
            self.assertEqual(c.get("/v1/wallets/%s" % o.uid).json()["balance"], expected, o.uid)
        c.close()

        auditor = harness.Server(*self.common, demo=False, test_clock=True)
        try:
            ac = auditor.client()
            a = ac.get("/_test/audit").json()
            ac.close()
        finally:
            auditor.assert_clean_stop(self)
        self.assertEqual(a["walletMismatches"], 0, a)
        self.assertEqual(a["seatMismatches"], 0, a)
        self.assertEqual(a["paymentMismatches"], 0, a)
        self.assertEqual(a["totalBalance"] + a["totalPayments"] - a["totalRefunds"],
                         a["totalCharges"], a)
        self.assertEqual(a["reservedSeats"], sum(1 for s in seats.values() if s == "RESERVED"))
        self.assertEqual(a["reservations"], a["reservedSeats"])


if __name__ == "__main__":
    if not PG or not REDIS:
        print("set CONCERT_TEST_PG_URI and CONCERT_TEST_REDIS_URI (the PostgreSQL and "
              "Redis backends) to run this test", file=sys.stderr)
        sys.exit(2)
    unittest.main(verbosity=2)
