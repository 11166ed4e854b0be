"""Operations of concert-http-server over real HTTP: health, metrics,
request ids and the access log, the static page, keep-alive, concurrency,
flags and environment, SIGTERM with a request in flight, idle timeouts.
"""
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from apitest import ServerTest, user  # noqa: E402


class OperationsTest(ServerTest):
    def test_health(self):
        r = self.c.get("/health")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["status"], "ok")

    def test_request_ids_and_access_log(self):
        r = self.c.get("/v1/concerts", headers={"X-Request-Id": "trace-abc.123"})
        self.assertEqual(r.header("X-Request-Id"), "trace-abc.123")
        r = self.c.get("/v1/concerts")
        generated = r.header("X-Request-Id")
        self.assertRegex(generated, r"^[0-9a-f]{16}$")
        r = self.c.get("/v1/concerts", headers={"X-Request-Id": "bad id with spaces"})
        self.assertRegex(r.header("X-Request-Id"), r"^[0-9a-f]{16}$")
        self.c.get("/v1/schedules/1/seats")
        self.c.close()
        lines = []
        for _ in range(500):
            lines = self.server.access_lines()
            if len(lines) >= 4:
                break
            time.sleep(0.02)
        by_id = {line["request_id"]: line for line in lines}
        self.assertIn("trace-abc.123", by_id)
        line = by_id[generated]
        self.assertEqual(line["method"], "GET")
        self.assertEqual(line["path"], "/v1/concerts")
        self.assertEqual(line["status"], 200)
        self.assertEqual(line["route"], "GET /v1/concerts")
        self.assertIsInstance(line["latency_ms"], float)

    def test_metrics(self):
        a, b = user("a"), user("b")
        ta, tb = self.active_token(a), self.active_token(b)
        self.hold(ta, [7])
        self.c.post("/v1/holds", {"scheduleId": 1, "seatNos": [7]}, token=tb)
        self.c.get("/v1/schedules/1/seats")
        r = self.c.get("/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/plain"))
        text = r.body.decode()
        self.assertIn('concert_http_requests_total{route="POST /v1/holds",status="201"} 1', text)
        self.assertIn('concert_http_requests_total{route="POST /v1/holds",status="409"} 1', text)
        self.assertIn('concert_http_request_duration_seconds_bucket{route="GET /v1/schedules/{id}/seats",le="+Inf"} 1', text)
        self.assertIn("concert_holds_total 1\n", text)
        self.assertIn("concert_seat_conflicts_total 1\n", text)
        self.assertIn('concert_engine_ops_total{op="hold",result="seat_unavailable"} 1', text)
        self.assertIn('concert_schedule_seats{concert="1",schedule="1",state="held"} 1', text)
        self.assertRegex(text, r'concert_queue_tokens\{concert="1",state="active"\} [1-9][0-9]*\n')
        self.assertIn('concert_queue_tokens{concert="1",state="waiting"} ', text)
        for line in text.splitlines():
            if line and not line.startswith("#"):
                self.assertRegex(line, r'^[a-z_]+(\{([a-z_]+="[^"]*",?)*\})? [0-9.e+-]+$')

    def test_static_page(self):
        r = self.c.get("/")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/html"))
        self.assertIn(b'id="seat-map"', r.body)
        js = self.c.get("/static/app.js")
        self.assertEqual(js.status, 200)
        self.assertTrue(js.header("Content-Type").startswith("text/javascript"))
        self.assertEqual(self.c.get("/static/missing.js").status, 404)
        self.assertEqual(self.c.request("HEAD", "/").status, 200)

    def test_overlong_path_is_414(self):
        r = self.c.get("/v1/wallets/" + "a" * 3000)
        self.assertEqual(r.status, 414)
        self.assertEqual(r.json()["error"], "uri_too_long")
        self.assertEqual(self.c.get("/health").status, 200)

    def test_keep_alive(self):
        self.c.get("/health")
        sock = self.c.conn.sock
        for _ in range(20):
            self.assertEqual(self.c.get("/v1/schedules/1/seats").status, 200)
        self.assertIs(self.c.conn.sock, sock)


class ConcurrencyTest(ServerTest):
    server_args = ("--max-active", "1000")

    def test_one_winner_per_seat(self):
        users = [user("racer") for _ in range(40)]
        tokens = {u: self.active_token(u) for u in users}
        for u in users:
            self.charge(u, 1000000)

        def race(u):
            c = self.server.client()
            try:
                won = []
                for seat in (1, 2, 3):
                    r = c.post("/v1/holds", {"scheduleId": 2, "seatNos": [seat]}, token=tokens[u])
                    if r.status == 201:
                        p = c.post("/v1/payments", {"holdId": r.json()["holdId"]},
                                   token=tokens[u], key="k-" + u)
                        if p.status == 201:
                            won.append(seat)
                        break
                    assert r.status == 409, r
                return won
            finally:
                c.close()

        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(race, users))
        winners = sorted(s for won in results for s in won)
        self.assertEqual(winners, [1, 2, 3])
        seats = self.seat_map(2)
        self.assertEqual([seats[s] for s in (1, 2, 3)], ["RESERVED"] * 3)
        a = self.audit()
        self.assertEqual(a["reservations"], 3)


class LifecycleTest(unittest.TestCase):
    def test_help_and_bad_flags(self):
        binary = harness.server_binary()
        r = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0)
        for flag in ("--listen", "--store", "--queue", "--lock", "--secret", "--secret-file",
                     "--max-active", "--hold-ttl", "--threads", "--demo", "--test-clock"):
            self.assertIn(flag, r.stdout)
        for bad in (["--nope"], ["--threads", "0"], ["--hold-ttl", "5x"],
                    ["--max-active", "-1"], ["--listen", "nowhere"]):
            r = subprocess.run([binary] + bad, capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0, bad)

    def test_secret_file_and_environment(self):
        with tempfile.NamedTemporaryFile("w", delete=False) as f:
            f.write("file-secret-0123456789\n")
        try:
            s = harness.Server("--secret-file", f.name, env={"CONCERT_MAX_ACTIVE": "1"})
            try:
                c = s.client()
                c.post("/v1/queue/tokens", {"userId": "a", "concertId": 1})
                r = c.post("/v1/queue/tokens", {"userId": "b", "concertId": 1})
                self.assertEqual(r.json()["status"], "WAITING")  # CONCERT_MAX_ACTIVE=1
                c.close()
            finally:
                s.assert_clean_stop(self)
        finally:
            os.unlink(f.name)

    def test_sigterm_finishes_the_request_in_flight(self):
        s = harness.Server()
        try:
            body = json.dumps({"amount": 77}).encode()
            sock = socket.create_connection(("127.0.0.1", s.port), timeout=20)
            sock.sendall(b"POST /v1/wallets/late/charge HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body[:5])
            # In flight: headers read, body pending (the /metrics request is the other one).
            probe = s.client()
            deadline = time.monotonic() + 20
            while b"concert_http_in_flight_requests 2\n" not in probe.get("/metrics").body:
                self.assertLess(time.monotonic(), deadline, "the request never got in flight")
                time.sleep(0.02)
            probe.close()
            s.proc.send_signal(15)
            # Draining: the listening socket is closed, new connections fail.
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", s.port), timeout=1).close()
                    time.sleep(0.02)
                except OSError:
                    break
            sock.sendall(body[5:])
            reply = b""
            while True:
                data = sock.recv(4096)
                if not data:
                    break
                reply += data
            sock.close()
            self.assertTrue(reply.startswith(b"HTTP/1.1 200"), reply[:200])
            self.assertIn(b'{"balance":77}', reply)
            self.assertIn(b"Connection: close", reply)
        finally:
            s.assert_clean_stop(self)

    def test_idle_connections_time_out(self):
        s = harness.Server("--timeout", "1")
        try:
            sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # never finished
            start = time.monotonic()
            data = sock.recv(4096)
            elapsed = time.monotonic() - start
            sock.close()
            self.assertEqual(data, b"")
            self.assertLess(elapsed, 8)
        finally:
            s.assert_clean_stop(self)


if __name__ == "__main__":
    unittest.main(verbosity=2)
