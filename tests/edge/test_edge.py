"""The edge: nginx + resty.concert in front of two concert-http-server
instances sharing one secret (examples/edge/nginx.conf, on 127.0.0.1).

Bad tokens (missing, tampered, foreign, expired, waiting) are answered by
nginx and reach no upstream (checked in the upstreams' access logs); good
ones pass. With CONCERT_TEST_PG_URI and CONCERT_TEST_REDIS_URI the two
instances share PostgreSQL + Redis and the whole flow runs round-robin
through the edge; without them each has its own memory store, and the flow
test is left out (it runs in the shared configuration). Standard library only; see edge.py for the environment.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
import edge  # noqa: E402
import harness  # noqa: E402

PG = os.environ.get("CONCERT_TEST_PG_URI")
REDIS = os.environ.get("CONCERT_TEST_REDIS_URI")
SHARED = bool(PG and REDIS)
FLOOD = int(os.environ.get("CONCERT_EDGE_FLOOD", "10000"))
HOUR_MS = 3600 * 1000


def with_option(uri, option):
    return uri + ("&" if "?" in uri else "?") + option


def now_ms():
    return int(time.time() * 1000)


class EdgeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="concert-edge-test-")
        cls.secret = uuid.uuid4().hex + uuid.uuid4().hex
        cls.secret_file = os.path.join(cls.dir, "secret")
        with open(cls.secret_file, "w") as f:
            f.write(cls.secret + "\n")
        common = ["--secret-file", cls.secret_file, "--max-active", "50"]
        if SHARED:
            run = uuid.uuid4().hex[:10]
            queue = with_option(REDIS, "prefix=edge_%s:" % run)
            common += ["--store", with_option(PG, "schema=edge_" + run), "--queue", queue]
            cls.a = harness.Server(*common, demo=True, test_clock=False)
            cls.b = harness.Server(*common, demo=False, test_clock=False)
        else:
            cls.a = harness.Server(*common, demo=True, test_clock=False)
            cls.b = harness.Server(*common, demo=True, test_clock=False)
        cls.servers = [cls.a, cls.b]
        cls.port = edge.free_port()
        conf = edge.edge_conf(cls.port, [cls.a.port, cls.b.port], cls.secret_file, concert_id=1)
        # A test-only location that answers with the user header the
        # upstream would see.
        marker = "        # Everything else"
        assert marker in conf
        conf = conf.replace(marker, """        location = /edge-test/user {
            access_by_lua_block { require("resty.concert").access(concert_edge) }
            content_by_lua_block { ngx.print("user=", ngx.var.http_x_concert_user or "") }
        }
        location = /edge-test/open {
            content_by_lua_block { ngx.print("user=", ngx.var.http_x_concert_user or "") }
        }
""" + marker, 1)
        cls.nginx = edge.Nginx(conf, prefix=os.path.join(cls.dir, "nginx"))
        cls.nginx.wait_listening(cls.port)
        cls.c = harness.Client(cls.port)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        code = cls.nginx.stop()
        errors = cls.nginx.errors()
        for s in cls.servers:
            s.stop()
        if code not in (0, -15):
            raise AssertionError("nginx exit %s:\n%s" % (code, errors))
        if "[error]" in errors or "[alert]" in errors or "[crit]" in errors:
            raise AssertionError("nginx error log:\n" + errors)
        if not os.environ.get("CONCERT_EDGE_KEEP"):
            shutil.rmtree(cls.dir, ignore_errors=True)

    # ---- helpers -------------------------------------------------------------------

    def sign(self, **fields):
        secret = fields.pop("secret", self.secret)
        claims = {"token_id": 900001, "concert_id": 1, "user_id": "edge-user",
                  "issued_at": now_ms() - 1000, "kind": "ACTIVE",
                  "active_until": now_ms() + HOUR_MS}
        claims.update(fields)
        return edge.sign_token(secret, **claims)

    def upstream_lines(self):
        """Both upstreams' access-log lines, once each has logged a fresh
        sentinel request sent to it directly (the log is written after the
        answer, so waiting for the sentinel flushes what came before)."""
        sentinel = "edge-sentinel-" + uuid.uuid4().hex[:8]
        lines = []
        for s in self.servers:
            c = s.client()
            c.get("/health", headers={"X-Request-Id": sentinel})
            c.close()
            for _ in range(500):
                got = s.access_lines()
                if any(line.get("request_id") == sentinel for line in got):
                    break
                time.sleep(0.02)
            else:
                self.fail("sentinel never logged")
            lines += got
        return lines

    def assert_rejected(self, status, error, token, path="/v1/holds", method="POST", body=None):
        rid = "edge-bad-" + uuid.uuid4().hex[:12]
        if body is None and method == "POST":
            body = {"scheduleId": 1, "seatNos": [1]}
        r = self.c.request(method, path, body=body, token=token, headers={"X-Request-Id": rid})
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.json()["error"], error, r)
        self.assertIn("message", r.json())
        self.assertEqual(r.header("Content-Type"), "application/json")
        return rid

    # ---- tests ---------------------------------------------------------------------

    def test_health_passes_round_robin(self):
        before = len(self.upstream_lines())
        for _ in range(4):
            r = self.c.get("/health")
            self.assertEqual(r.status, 200, r)
        lines = self.upstream_lines()
        health = [line for line in lines if line.get("path") == "/health"
                  and not str(line.get("request_id", "")).startswith("edge-sentinel")]
        self.assertGreaterEqual(len(lines) - before, 4)
        per_server = [sum(1 for line in s.access_lines() if line.get("path") == "/health"
                          and not str(line.get("request_id", "")).startswith("edge-sentinel"))
                      for s in self.servers]
        self.assertEqual(len(health), sum(per_server))
        self.assertTrue(all(n >= 1 for n in per_server), per_server)

    def test_bad_tokens_never_reach_an_upstream(self):
        good = self.sign()
        dot = good.index(".")
        flip = lambda ch: "B" if ch == "A" else "A"  # noqa: E731
        tampered_claims = good[:dot - 1] + flip(good[dot - 1]) + good[dot:]
        tampered_mac = good[:-1] + flip(good[-1])
        rids = [
            self.assert_rejected(401, "invalid_token", None),
            self.assert_rejected(401, "invalid_token", ""),
            self.assert_rejected(401, "invalid_token", tampered_claims),
            self.assert_rejected(401, "invalid_token", tampered_mac),
            self.assert_rejected(401, "invalid_token", good[:len(good) // 2]),
            self.assert_rejected(401, "invalid_token", "x" * 2000),
            self.assert_rejected(401, "invalid_token", self.sign(secret="another-secret")),
            self.assert_rejected(401, "invalid_token", self.sign(concert_id=2)),
            self.assert_rejected(401, "expired", self.sign(active_until=now_ms() - 1000)),
            self.assert_rejected(403, "token_not_active", self.sign(kind="WAITING", active_until=0)),
            self.assert_rejected(401, "invalid_token", tampered_mac, path="/v1/holds/1",
                                 method="DELETE"),
            self.assert_rejected(401, "invalid_token", None, path="/v1/payments",
                                 body={"holdId": 1}),
            self.assert_rejected(401, "expired", self.sign(active_until=now_ms() - 1000),
                                 path="/v1/payments", body={"holdId": 1}),
        ]
        seen = {line.get("request_id") for line in self.upstream_lines()}
        self.assertFalse(seen & set(rids), "rejected requests reached an upstream")

    def test_good_token_passes_and_waiting_can_poll(self):
        rid = "edge-good-" + uuid.uuid4().hex[:12]
        r = self.c.post("/v1/holds", {"scheduleId": 1, "seatNos": [1]}, token=self.sign(),
                        headers={"X-Request-Id": rid, "X-Concert-User": "mallory"})
        # The upstream decides (the token is valid at the edge but unknown
        # to the servers' queue): what matters is that it got there.
        self.assertNotIn(r.status, (403,), r)
        waiting = self.sign(kind="WAITING", active_until=0)
        rid2 = "edge-poll-" + uuid.uuid4().hex[:12]
        self.c.get("/v1/queue/tokens/me", token=waiting, headers={"X-Request-Id": rid2})
        seen = {line.get("request_id") for line in self.upstream_lines()}
        self.assertIn(rid, seen)
        self.assertIn(rid2, seen)

    def test_user_header_is_the_edges(self):
        token = self.sign(user_id="alice-edge")
        r = self.c.get("/edge-test/user", token=token, headers={"X-Concert-User": "mallory"})
        self.assertEqual((r.status, r.body), (200, b"user=alice-edge"))
        r = self.c.get("/edge-test/open", headers={"X-Concert-User": "mallory"})
        self.assertEqual((r.status, r.body), (200, b"user="), "a client-sent header is dropped everywhere")

    # The flow round-robin needs one store shared by both servers: it is part
    # of edge.shared (PostgreSQL + Redis) and not of edge.memory.
    if SHARED:
        def test_flow_through_the_edge(self):
            user = "edge-" + uuid.uuid4().hex[:8]
            r = self.c.post("/v1/queue/tokens", {"userId": user, "concertId": 1})
            self.assertIn(r.status, (200, 201), r)
            token = r.json()["token"]
            for _ in range(200):
                r = self.c.get("/v1/queue/tokens/me", token=token)
                self.assertEqual(r.status, 200, r)
                if r.json()["status"] == "ACTIVE":
                    token = r.json().get("token") or token
                    break
                time.sleep(0.05)
            self.assertEqual(r.json()["status"], "ACTIVE")
            r = self.c.post("/v1/wallets/%s/charge" % user, {"amount": 1000000})
            self.assertEqual(r.status, 200, r)
            schedule = self.c.get("/v1/concerts/1/schedules").json()[0]["id"]
            seats = self.c.get("/v1/schedules/%d/seats" % schedule).json()
            free = [s["seatNo"] for s in seats if s["status"] == "AVAILABLE"]
            r = self.c.post("/v1/holds", {"scheduleId": schedule, "seatNos": free[:1]}, token=token)
            self.assertEqual(r.status, 201, r)
            hold = r.json()["holdId"]
            r = self.c.post("/v1/payments", {"holdId": hold}, token=token, key="pay-" + user)
            self.assertEqual(r.status, 201, r)
            self.assertIn("reservationId", r.json())
            # Both servers took part (round robin).
            lines = self.upstream_lines()
            for s in self.servers:
                self.assertTrue(any(line.get("path", "").startswith("/v1/") for line in s.access_lines()))
            self.assertTrue(lines)

    def test_flood_of_forged_tokens(self):
        wrk = shutil.which("wrk")
        self.assertTrue(wrk, "wrk is needed (scripts/deps test installs it)")
        before = self.upstream_lines()
        threads = 2
        env = dict(os.environ, EDGE_FLOOD_REQUESTS=str(FLOOD), EDGE_FLOOD_THREADS=str(threads))
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flood.lua")
        out = subprocess.run([wrk, "-t%d" % threads, "-c32", "-d15s", "-s", script,
                              "http://127.0.0.1:%d/" % self.port],
                             capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        line = [l for l in out.stdout.splitlines() if l.startswith("statuses")]
        self.assertTrue(line, out.stdout)
        statuses = dict(p.split("=") for p in line[0].split()[1:])
        self.assertEqual(set(statuses), {"401"}, out.stdout)
        self.assertGreaterEqual(int(statuses["401"]), FLOOD, out.stdout)
        after = self.upstream_lines()
        sentinel = lambda l: str(l.get("request_id", "")).startswith("edge-sentinel")  # noqa: E731
        new = [l for l in after if not sentinel(l)]
        old = [l for l in before if not sentinel(l)]
        self.assertEqual(len(new), len(old), "forged requests reached an upstream")
        self.assertFalse(any(l.get("request_id") == "edge-flood" for l in after))


if __name__ == "__main__":
    unittest.main(verbosity=2)
