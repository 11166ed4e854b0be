"""The base of the HTTP tests: a fresh server per test and the helpers
that drive the API and capture the state an error must leave alone."""
import re
import unittest
import uuid

import harness

CONCERT = 1
SCHED = 1
MINUTE = 60 * 1000
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
INT64_MAX = 2**63 - 1


def user(prefix="u"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


class ServerTest(unittest.TestCase):
    server_args = ()

    def setUp(self):
        self.server = harness.Server(*self.server_args)
        self.c = self.server.client()

    def tearDown(self):
        self.c.close()
        self.server.assert_clean_stop(self)

    # ---- helpers --------------------------------------------------------------

    def enter(self, uid, concert=CONCERT, expect=201):
        r = self.c.post("/v1/queue/tokens", {"userId": uid, "concertId": concert})
        self.assertEqual(r.status, expect, r)
        return r.json()["token"]

    def active_token(self, uid):
        token = self.enter(uid)
        me = self.c.get("/v1/queue/tokens/me", token=token).json()
        self.assertEqual(me["status"], "ACTIVE")
        return me["token"]

    def seat_map(self, sched=SCHED):
        r = self.c.get("/v1/schedules/%d/seats" % sched)
        self.assertEqual(r.status, 200)
        return {s["seatNo"]: s["status"] for s in r.json()}

    def balance(self, uid):
        r = self.c.get("/v1/wallets/%s" % uid)
        self.assertEqual(r.status, 200)
        return r.json()["balance"]

    def transactions(self, uid):
        r = self.c.get("/v1/wallets/%s/transactions?limit=1000" % uid)
        self.assertEqual(r.status, 200)
        return r.json()["items"]

    def charge(self, uid, amount, key=None):
        r = self.c.post("/v1/wallets/%s/charge" % uid, {"amount": amount}, key=key)
        self.assertEqual(r.status, 200, r)
        return r.json()["balance"]

    def hold(self, token, seats, sched=SCHED, expect=201):
        r = self.c.post("/v1/holds", {"scheduleId": sched, "seatNos": seats}, token=token)
        self.assertEqual(r.status, expect, r)
        return r.json()

    def pay(self, token, hold_id, key=None, expect=201):
        r = self.c.post("/v1/payments", {"holdId": hold_id}, token=token, key=key)
        self.assertEqual(r.status, expect, r)
        return r.json()

    def assert_error(self, r, status, code):
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertEqual(body["error"], code, body)
        self.assertIsInstance(body["message"], str)
        self.assertTrue(body["message"])
        self.assertEqual(r.header("Content-Type"), "application/json")
        return body

    def state(self, *users):
        """What the error cases must leave alone."""
        return (self.seat_map(1), self.seat_map(2),
                [(u, self.balance(u), len(self.transactions(u))) for u in users],
                self.audit())

    def audit(self):
        r = self.c.get("/_test/audit")
        self.assertEqual(r.status, 200)
        a = r.json()
        self.assertEqual(a["walletMismatches"], 0, a)
        self.assertEqual(a["seatMismatches"], 0, a)
        self.assertEqual(a["paymentMismatches"], 0, a)
        self.assertEqual(a["totalBalance"] + a["totalPayments"] - a["totalRefunds"],
                         a["totalCharges"], a)
        return a

    def clock(self, **kw):
        r = self.c.post("/_test/clock", kw)
        self.assertEqual(r.status, 200, r)
        return r.json()["nowMs"]
