"""End-to-end tests of the API of concert-http-server over real HTTP
(DESIGN.md §5): the whole flow and every status of the table.

Every test gets its own server (memory backend, --demo, --test-clock) so
seats, wallets and the clock never leak between tests. Every error case
checks the documented status and error code, and that nothing changed.
"""
import base64
import json
import os
import socket
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from apitest import CONCERT, INT64_MAX, MINUTE, RFC3339, ServerTest, user  # noqa: E402


class CatalogTest(ServerTest):
    def test_concerts_schedules_seats(self):
        r = self.c.get("/v1/concerts")
        self.assertEqual(r.status, 200)
        concerts = r.json()
        self.assertEqual(len(concerts), 1)
        self.assertEqual(concerts[0]["id"], CONCERT)
        self.assertIsInstance(concerts[0]["title"], str)
        self.assertRegex(concerts[0]["opensAt"], RFC3339)

        schedules = self.c.get("/v1/concerts/1/schedules").json()
        self.assertEqual([s["id"] for s in schedules], [1, 2])
        for s in schedules:
            self.assertRegex(s["startsAt"], RFC3339)
            self.assertEqual(s["availableSeats"], 50)

        seats = self.c.get("/v1/schedules/2/seats").json()
        self.assertEqual([s["seatNo"] for s in seats], list(range(1, 51)))
        self.assertEqual({s["status"] for s in seats}, {"AVAILABLE"})
        prices = {s["grade"]: s["price"] for s in seats}
        self.assertEqual(prices, {"VIP": 150000, "R": 120000, "S": 90000})

    def test_unknown_ids_are_404(self):
        self.assert_error(self.c.get("/v1/concerts/99/schedules"), 404, "not_found")
        self.assert_error(self.c.get("/v1/schedules/99/seats"), 404, "not_found")
        self.assert_error(self.c.post("/v1/queue/tokens", {"userId": "a", "concertId": 99}),
                          404, "not_found")

    def test_bad_path_ids_are_400(self):
        for path in ("/v1/schedules/abc/seats", "/v1/schedules/0/seats",
                     "/v1/schedules/-1/seats", "/v1/schedules/99999999999999999999/seats",
                     "/v1/concerts/1.5/schedules"):
            self.assert_error(self.c.get(path), 400, "invalid_argument")

    def test_unknown_route_and_method(self):
        self.assert_error(self.c.get("/v1/nothing"), 404, "not_found")
        r = self.c.request("PUT", "/v1/holds")
        self.assert_error(r, 405, "method_not_allowed")
        self.assertEqual(r.header("Allow"), "POST")
        r = self.c.request("POST", "/health")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD")


class FlowTest(ServerTest):
    def test_whole_flow(self):
        alice = user("alice")
        r = self.c.post("/v1/queue/tokens", {"userId": alice, "concertId": CONCERT})
        self.assertEqual(r.status, 201)
        q = r.json()
        self.assertEqual(q["status"], "ACTIVE")
        self.assertEqual(q["position"], 0)
        self.assertIsInstance(q["estimatedWaitSeconds"], int)
        token = q["token"]
        again = self.c.post("/v1/queue/tokens", {"userId": alice, "concertId": CONCERT})
        self.assertEqual(again.status, 200)
        self.assertEqual(again.json()["status"], "ACTIVE")

        me = self.c.get("/v1/queue/tokens/me", token=token)
        self.assertEqual(me.status, 200)
        me = me.json()
        self.assertEqual(me["status"], "ACTIVE")
        self.assertRegex(me["activeUntil"], RFC3339)
        for k in ("position", "estimatedWaitSeconds"):
            self.assertIn(k, me)

        h = self.hold(token, [12, 11])
        self.assertIsInstance(h["holdId"], int)
        self.assertEqual(h["seatNos"], [11, 12])
        self.assertEqual(h["amount"], 240000)
        self.assertRegex(h["expiresAt"], RFC3339)
        seats = self.seat_map()
        self.assertEqual((seats[11], seats[12], seats[13]), ("HELD", "HELD", "AVAILABLE"))
        sched = self.c.get("/v1/concerts/1/schedules").json()[0]
        self.assertEqual(sched["availableSeats"], 48)

        self.assertEqual(self.charge(alice, 300000), 300000)
        p = self.pay(token, h["holdId"])
        self.assertEqual(p["amount"], 240000)
        self.assertEqual(p["balance"], 60000)
        for k in ("paymentId", "reservationId"):
            self.assertIsInstance(p[k], int)
        seats = self.seat_map()
        self.assertEqual((seats[11], seats[12]), ("RESERVED", "RESERVED"))
        self.assertEqual(self.balance(alice), 60000)
        self.assertEqual(self.c.get("/v1/queue/tokens/me", token=token).json()["status"], "DONE")

        res = self.c.get("/v1/reservations/%d?userId=%s" % (p["reservationId"], alice))
        self.assertEqual(res.status, 200)
        self.assertEqual(res.json()["status"], "CONFIRMED")

        r = self.c.post("/v1/reservations/%d/cancel" % p["reservationId"], {"userId": alice})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"refunded": 240000, "balance": 300000})
        seats = self.seat_map()
        self.assertEqual((seats[11], seats[12]), ("AVAILABLE", "AVAILABLE"))
        kinds = [t["kind"] for t in self.transactions(alice)]
        self.assertEqual(kinds, ["REFUND", "PAYMENT", "CHARGE"])
        self.audit()

    def test_release_hold(self):
        bob = user("bob")
        token = self.active_token(bob)
        h = self.hold(token, [1, 2])
        r = self.c.delete("/v1/holds/%d" % h["holdId"], token=token)
        self.assertEqual(r.status, 204)
        self.assertEqual(r.body, b"")
        self.assertEqual(self.seat_map()[1], "AVAILABLE")
        self.assert_error(self.c.delete("/v1/holds/%d" % h["holdId"], token=token),
                          409, "invalid_state")
        self.assert_error(self.c.delete("/v1/holds/999", token=token), 404, "not_found")

    def test_hold_read_and_extend(self):
        token = self.active_token(user())
        h = self.hold(token, [5])
        r = self.c.get("/v1/holds/%d" % h["holdId"], token=token)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["status"], "HELD")
        self.clock(advanceMs=MINUTE)
        r = self.c.post("/v1/holds/%d/extend" % h["holdId"], token=token)
        self.assertEqual(r.status, 200, r)
        self.assertGreater(r.json()["expiresAt"], h["expiresAt"])

    def test_queue_leave(self):
        token = self.active_token(user())
        self.assertEqual(self.c.delete("/v1/queue/tokens/me", token=token).status, 204)
        self.assert_error(self.c.get("/v1/queue/tokens/me", token=token), 410, "expired")
        self.assert_error(self.c.post("/v1/holds", {"scheduleId": 1, "seatNos": [1]},
                                      token=token), 410, "expired")


class ConflictTest(ServerTest):
    def test_seat_unavailable_lists_conflicts(self):
        a, b = user("a"), user("b")
        ta, tb = self.active_token(a), self.active_token(b)
        self.hold(ta, [20, 21])
        before = self.state(a, b)
        r = self.c.post("/v1/holds", {"scheduleId": 1, "seatNos": [19, 20, 21]}, token=tb)
        body = self.assert_error(r, 409, "seat_unavailable")
        self.assertEqual(sorted(body["conflicts"]), [20, 21])
        self.assertEqual(self.state(a, b), before)
        self.assertEqual(self.seat_map()[19], "AVAILABLE")

    def test_paid_hold_is_409(self):
        a = user("a")
        token = self.active_token(a)
        h = self.hold(token, [30])
        self.charge(a, 500000)
        self.pay(token, h["holdId"])
        # A fresh token of the same user: the hold is paid already.
        token2 = self.active_token(a)
        before = self.state(a)
        self.assert_error(self.c.post("/v1/payments", {"holdId": h["holdId"]}, token=token2),
                          409, "invalid_state")
        self.assertEqual(self.state(a), before)

    def test_other_users_hold_and_reservation_are_403(self):
        a, b = user("a"), user("b")
        ta, tb = self.active_token(a), self.active_token(b)
        h = self.hold(ta, [40])
        self.charge(a, 500000)
        self.charge(b, 500000)
        before = self.state(a, b)
        self.assert_error(self.c.delete("/v1/holds/%d" % h["holdId"], token=tb), 403, "forbidden")
        self.assert_error(self.c.post("/v1/payments", {"holdId": h["holdId"]}, token=tb),
                          403, "forbidden")
        self.assertEqual(self.state(a, b), before)
        p = self.pay(ta, h["holdId"])
        before = self.state(a, b)
        r = self.c.post("/v1/reservations/%d/cancel" % p["reservationId"], {"userId": b})
        self.assert_error(r, 403, "forbidden")
        self.assert_error(self.c.get("/v1/reservations/%d?userId=%s" % (p["reservationId"], b)),
                          403, "forbidden")
        self.assertEqual(self.state(a, b), before)

    def test_cancel_twice_and_unknown(self):
        a = user("a")
        token = self.active_token(a)
        h = self.hold(token, [41])
        self.charge(a, 200000)
        p = self.pay(token, h["holdId"])
        path = "/v1/reservations/%d/cancel" % p["reservationId"]
        self.assertEqual(self.c.post(path, {"userId": a}).status, 200)
        before = self.state(a)
        self.assert_error(self.c.post(path, {"userId": a}), 409, "invalid_state")
        self.assert_error(self.c.post("/v1/reservations/999/cancel", {"userId": a}),
                          404, "not_found")
        self.assertEqual(self.state(a), before)

    def test_insufficient_funds_is_402(self):
        a = user("a")
        token = self.active_token(a)
        h = self.hold(token, [1])
        self.charge(a, 1000)
        before = self.state(a)
        self.assert_error(self.c.post("/v1/payments", {"holdId": h["holdId"]}, token=token),
                          402, "insufficient_funds")
        self.assertEqual(self.state(a), before)
        self.assertEqual(self.seat_map()[1], "HELD")

    def test_unknown_hold_and_seat_are_404(self):
        a = user("a")
        token = self.active_token(a)
        before = self.state(a)
        self.assert_error(self.c.post("/v1/payments", {"holdId": 4242}, token=token),
                          404, "not_found")
        self.assert_error(self.c.post("/v1/holds", {"scheduleId": 1, "seatNos": [2, 51]},
                                      token=token), 404, "not_found")
        self.assert_error(self.c.post("/v1/holds", {"scheduleId": 77, "seatNos": [2]},
                                      token=token), 404, "not_found")
        self.assertEqual(self.state(a), before)

    def test_hold_limits_are_429(self):
        a = user("a")
        token = self.active_token(a)
        for seat in (1, 2, 3, 4):
            self.hold(token, [seat])
        before = self.state(a)
        self.assert_error(self.c.post("/v1/holds", {"scheduleId": 1, "seatNos": [5]},
                                      token=token), 429, "limit_exceeded")
        self.assertEqual(self.state(a), before)


class TokenTest(ServerTest):
    def forged(self, token):
        claims, mac = token.split(".")
        raw = bytearray(base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4)))
        raw[0] ^= 1
        return claims + "." + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")

    def test_missing_forged_and_garbage_tokens_are_401(self):
        a = user("a")
        token = self.active_token(a)
        h = self.hold(token, [9])
        self.charge(a, 500000)
        before = self.state(a)
        bad_tokens = [None, "", "garbage", "a.b", self.forged(token), token + "x",
                      "x" * 300]
        for bad in bad_tokens:
            with self.subTest(token=bad and bad[:20]):
                kw = {} if bad is None else {"token": bad}
                self.assert_error(self.c.post("/v1/holds", {"scheduleId": 1, "seatNos": [10]}, **kw),
                                  401, "invalid_token")
                self.assert_error(self.c.post("/v1/payments", {"holdId": h["holdId"]}, **kw),
                                  401, "invalid_token")
                self.assert_error(self.c.delete("/v1/holds/%d" % h["holdId"], **kw),
                                  401, "invalid_token")
                self.assert_error(self.c.get("/v1/queue/tokens/me", **kw), 401, "invalid_token")
        self.assertEqual(self.state(a), before)

    def test_token_of_another_secret_is_401(self):
        other = harness.Server("--secret", "another-secret-another-secret")
        oc = other.client()
        try:
            foreign = oc.post("/v1/queue/tokens", {"userId": "a", "concertId": 1}).json()["token"]
        finally:
            oc.close()
            other.assert_clean_stop(self)
        self.assert_error(self.c.post("/v1/holds", {"scheduleId": 1, "seatNos": [1]},
                                      token=foreign), 401, "invalid_token")
        self.assertEqual(self.seat_map()[1], "AVAILABLE")


class WaitingTest(ServerTest):
    server_args = ("--max-active", "1")

    def test_waiting_token_is_403(self):
        first, second = user("first"), user("second")
        self.active_token(first)
        r = self.c.post("/v1/queue/tokens", {"userId": second, "concertId": CONCERT})
        self.assertEqual(r.status, 201)
        q = r.json()
        self.assertEqual(q["status"], "WAITING")
        self.assertEqual(q["position"], 1)
        self.assertGreater(q["estimatedWaitSeconds"], 0)
        me = self.c.get("/v1/queue/tokens/me", token=q["token"]).json()
        self.assertEqual(me["status"], "WAITING")
        self.assertIsNone(me["activeUntil"])
        before = self.state(second)
        self.assert_error(self.c.post("/v1/holds", {"scheduleId": 1, "seatNos": [1]},
                                      token=q["token"]), 403, "token_not_active")
        self.assertEqual(self.state(second), before)


class ExpiryTest(ServerTest):
    server_args = ("--hold-ttl", "5m", "--active-ttl", "10m")

    def test_expired_hold_is_410_and_frees_the_seat(self):
        a, b = user("a"), user("b")
        token = self.active_token(a)
        h = self.hold(token, [25])
        self.charge(a, 500000)
        self.clock(advanceMs=5 * MINUTE + 1)
        self.assertEqual(self.seat_map()[25], "AVAILABLE")
        before = self.state(a)
        self.assert_error(self.c.post("/v1/payments", {"holdId": h["holdId"]}, token=token),
                          410, "expired")
        self.assertEqual(self.state(a), before)
        # Someone else can take the seat now.
        self.hold(self.active_token(b), [25])

    def test_expired_token_is_410(self):
        token = self.active_token(user())
        self.clock(advanceMs=10 * MINUTE + 1)
        self.assert_error(self.c.get("/v1/queue/tokens/me", token=token), 410, "expired")
        self.assert_error(self.c.post("/v1/holds", {"scheduleId": 1, "seatNos": [1]},
                                      token=token), 410, "expired")
        self.assertEqual(self.seat_map()[1], "AVAILABLE")

    def test_outside_the_window_is_409(self):
        opens = self.c.get("/v1/concerts").json()[0]["opensAt"]
        opens_ms = int(time.mktime(time.strptime(opens[:19], "%Y-%m-%dT%H:%M:%S")) -
                       time.timezone) * 1000
        self.clock(nowMs=opens_ms - 60 * MINUTE)
        a = user("a")
        token = self.active_token(a)
        before = self.state(a)
        self.assert_error(self.c.post("/v1/holds", {"scheduleId": 1, "seatNos": [1]},
                                      token=token), 409, "reservation_closed")
        self.assertEqual(self.state(a), before)


class IdempotencyTest(ServerTest):
    def test_charge_repeat_gets_the_same_answer(self):
        a = user("a")
        first = self.c.post("/v1/wallets/%s/charge" % a, {"amount": 1000}, key="charge-1")
        self.assertEqual(first.status, 200)
        self.charge(a, 5)  # the balance moves on
        again = self.c.post("/v1/wallets/%s/charge" % a, {"amount": 1000}, key="charge-1")
        self.assertEqual((again.status, again.body), (first.status, first.body))
        self.assertEqual(self.balance(a), 1005)
        before = self.state(a)
        self.assert_error(self.c.post("/v1/wallets/%s/charge" % a, {"amount": 2000},
                                      key="charge-1"), 409, "idempotency_conflict")
        self.assertEqual(self.state(a), before)

    def test_payment_repeat_gets_the_same_answer(self):
        a = user("a")
        token = self.active_token(a)
        h1 = self.hold(token, [31])
        self.charge(a, 500000)
        first = self.c.post("/v1/payments", {"holdId": h1["holdId"]}, token=token, key="pay-1")
        self.assertEqual(first.status, 201, first)
        self.charge(a, 7)  # the balance moves on; the repeat still says the old one
        again = self.c.post("/v1/payments", {"holdId": h1["holdId"]}, token=token, key="pay-1")
        self.assertEqual((again.status, again.body), (first.status, first.body))
        self.assertEqual(self.balance(a), 500000 - 90000 + 7)
        self.assertEqual([t["kind"] for t in self.transactions(a)].count("PAYMENT"), 1)
        # The same key for another hold is a conflict, not a second payment.
        token2 = self.active_token(a)
        h2 = self.hold(token2, [32])
        before = self.state(a)
        self.assert_error(self.c.post("/v1/payments", {"holdId": h2["holdId"]}, token=token2,
                                      key="pay-1"), 409, "idempotency_conflict")
        self.assertEqual(self.state(a), before)

    def test_bad_keys_are_400(self):
        a = user("a")
        before = self.state(a)
        for key in ("", "k" * 65):
            self.assert_error(self.c.post("/v1/wallets/%s/charge" % a, {"amount": 1}, key=key),
                              400, "invalid_argument")
        self.assertEqual(self.state(a), before)


class MalformedInputTest(ServerTest):
    """Malformed JSON, wrong types, huge numbers, bad sizes: 400, nothing changes."""

    def test_every_post_endpoint_rejects_bad_bodies(self):
        a = user("a")
        token = self.active_token(a)
        h = self.hold(token, [45])
        self.charge(a, 1000)
        r = self.c.post("/v1/reservations/1/cancel", {"userId": a})  # no reservation yet
        self.assert_error(r, 404, "not_found")
        before = self.state(a)
        bad_raw = [b"", b"{", b"{\"a\":}", b"[]", b"null", b"42", b"\"x\"", b"{} x",
                   b"{\"a\":1,\"a\":2}", b"\xff\xfe", b"{\"userId\":\"a\\u0000b\"}",
                   b"{\"amount\":99999999999999999999999}", b"[" * 5000]
        endpoints = [
            ("/v1/queue/tokens", {"userId": a, "concertId": 1}),
            ("/v1/holds", {"scheduleId": 1, "seatNos": [46]}),
            ("/v1/wallets/%s/charge" % a, {"amount": 10}),
            ("/v1/payments", {"holdId": h["holdId"]}),
            ("/v1/reservations/1/cancel", {"userId": a}),
        ]
        for path, good in endpoints:
            for raw in bad_raw:
                with self.subTest(path=path, raw=raw[:30]):
                    self.assert_error(self.c.post(path, raw=raw, token=token), 400,
                                      "invalid_argument")
            for field in good:
                for wrong in (None, True, "1", 1.5, 1e3, [1], {"x": 1}, 2**63, -2**63 - 1):
                    if type(wrong) is type(good[field]):
                        continue
                    body = dict(good)
                    body[field] = wrong
                    with self.subTest(path=path, field=field, value=wrong):
                        self.assert_error(self.c.post(path, body, token=token), 400,
                                          "invalid_argument")
                body = dict(good)
                del body[field]
                with self.subTest(path=path, missing=field):
                    self.assert_error(self.c.post(path, body, token=token), 400,
                                      "invalid_argument")
        self.assertEqual(self.state(a), before)

    def test_value_ranges(self):
        a = user("a")
        token = self.active_token(a)
        before = self.state(a)
        cases = [
            ("/v1/wallets/%s/charge" % a, {"amount": 0}),
            ("/v1/wallets/%s/charge" % a, {"amount": -5}),
            ("/v1/holds", {"scheduleId": 1, "seatNos": []}),
            ("/v1/holds", {"scheduleId": 1, "seatNos": [3, 3]}),
            ("/v1/holds", {"scheduleId": 1, "seatNos": [0]}),
            ("/v1/holds", {"scheduleId": 1, "seatNos": [-4]}),
            ("/v1/holds", {"scheduleId": 1, "seatNos": [2**31]}),
            ("/v1/holds", {"scheduleId": 1, "seatNos": list(range(1, 66))}),
            ("/v1/holds", {"scheduleId": 0, "seatNos": [1]}),
            ("/v1/holds", {"scheduleId": 1, "seatNos": ["1"]}),
            ("/v1/payments", {"holdId": 0}),
            ("/v1/queue/tokens", {"userId": "", "concertId": 1}),
            ("/v1/queue/tokens", {"userId": "u" * 65, "concertId": 1}),
            ("/v1/queue/tokens", {"userId": "a", "concertId": -1}),
            ("/v1/reservations/1/cancel", {"userId": ""}),
        ]
        for path, body in cases:
            with self.subTest(path=path, body=str(body)[:60]):
                self.assert_error(self.c.post(path, body, token=token), 400, "invalid_argument")
        for path in ("/v1/wallets/%s" % ("u" * 65), "/v1/wallets/a%00b", "/v1/wallets/a%ffb",
                     "/v1/wallets/a%zz", "/v1/wallets/%s/transactions?limit=x" % a,
                     "/v1/wallets/%s/transactions?limit=0" % a):
            with self.subTest(path=path):
                self.assert_error(self.c.get(path), 400, "invalid_argument")
        self.assertEqual(self.state(a), before)

    def test_overflowing_charge_is_400(self):
        a = user("a")
        self.assertEqual(self.charge(a, INT64_MAX), INT64_MAX)
        before = self.state(a)
        self.assert_error(self.c.post("/v1/wallets/%s/charge" % a, {"amount": 1}), 400,
                          "amount_overflow")
        self.assertEqual(self.state(a), before)

    def test_user_ids_are_percent_decoded(self):
        odd = "ünïcode/slash user"
        path = "/v1/wallets/" + "".join(
            c if c.isalnum() and c.isascii() else "".join("%%%02X" % b for b in c.encode())
            for c in odd)
        self.assertEqual(self.c.post(path + "/charge", {"amount": 3}).json(), {"balance": 3})
        self.assertEqual(self.c.get(path).json(), {"balance": 3})


class BodyLimitTest(ServerTest):
    LIMIT = 64 * 1024

    def test_over_64_kib_is_413_and_changes_nothing(self):
        a = user("a")
        token = self.active_token(a)
        before = self.state(a)
        body = json.dumps({"userId": a, "concertId": 1, "pad": "x" * self.LIMIT}).encode()
        for path in ("/v1/queue/tokens", "/v1/holds", "/v1/wallets/%s/charge" % a,
                     "/v1/payments", "/v1/reservations/1/cancel"):
            with self.subTest(path=path):
                self.assert_error(self.c.post(path, raw=body, token=token), 413,
                                  "payload_too_large")
        self.assertEqual(self.state(a), before)

    def test_exactly_64_kib_is_accepted(self):
        a = user("a")
        body = json.dumps({"amount": 5}).encode()
        body = body + b" " * (self.LIMIT - len(body))
        self.assertEqual(len(body), self.LIMIT)
        r = self.c.post("/v1/wallets/%s/charge" % a, raw=body)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.balance(a), 5)

    def test_chunked_over_64_kib_is_413(self):
        a = user("a")
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        chunk = b"x" * 8192
        req = (b"POST /v1/wallets/%s/charge HTTP/1.1\r\nHost: x\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" % a.encode())
        for _ in range(10):
            req += b"%x\r\n%s\r\n" % (len(chunk), chunk)
        s.sendall(req + b"0\r\n\r\n")
        reply = b""
        while b"\r\n\r\n" not in reply:
            data = s.recv(4096)
            if not data:
                break
            reply += data
        s.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 413"), reply[:100])
        self.assertEqual(self.balance(a), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
