"""Runs concert-http-server processes and talks to them over real HTTP.

Standard library only. The server binary comes from $CONCERT_HTTP_SERVER
(set by ctest) or the first argument. Each Server listens on 127.0.0.1 on
a port the kernel picks (--listen 127.0.0.1:0) and announces it on stderr.
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

LISTEN_TIMEOUT = 30.0  # an ASan build starts slowly on a busy machine


def server_binary():
    path = os.environ.get("CONCERT_HTTP_SERVER")
    if not path and len(sys.argv) > 1 and os.path.exists(sys.argv[1]):
        path = sys.argv.pop(1)
    if not path or not os.access(path, os.X_OK):
        sys.stderr.write("set CONCERT_HTTP_SERVER to the concert-http-server binary\n")
        sys.exit(2)
    return path


def artifacts_dir():
    path = os.environ.get("CONCERT_HTTP_ARTIFACTS") or tempfile.mkdtemp(prefix="concert-http-")
    os.makedirs(path, exist_ok=True)
    return path


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:300])


class Client:
    """One keep-alive connection; reconnects when the server closed it."""

    def __init__(self, port, timeout=30):
        self.port = port
        self.timeout = timeout
        self.conn = None

    def _connect(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return self.conn

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, raw=None, headers=None, token=None, key=None):
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["X-QUEUE-TOKEN"] = token
        if key is not None:
            hdrs["Idempotency-Key"] = key
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        for attempt in range(2):
            conn = self._connect()
            try:
                conn.request(method, path, body=data, headers=hdrs)
                r = conn.getresponse()
                payload = r.read()
                resp = Response(r.status, r.getheaders(), payload)
                if (r.getheader("Connection") or "").lower() == "close":
                    self.close()
                return resp
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive connection the server closed meanwhile.
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


class Server:
    """A server process; stop() sends SIGTERM and checks a clean exit."""

    def __init__(self, *args, env=None, demo=True, test_clock=True):
        self.binary = server_binary()
        # Its logs live until this object is collected, or the run ends.
        self._dir = tempfile.TemporaryDirectory(prefix="concert-http-server-")
        self.dir = self._dir.name
        self.access_log = os.path.join(self.dir, "access.log")
        self.error_log = os.path.join(self.dir, "stderr.log")
        argv = [self.binary, "--listen", "127.0.0.1:0", "--access-log", self.access_log]
        if demo:
            argv.append("--demo")
        if test_clock:
            argv.append("--test-clock")
        argv.extend(args)
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.stderr = open(self.error_log, "wb")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.stderr,
                                     env=full_env)
        self.port = self._wait_listening()
        self.url = "http://127.0.0.1:%d" % self.port

    def _wait_listening(self):
        deadline = time.monotonic() + LISTEN_TIMEOUT
        while time.monotonic() < deadline:
            with open(self.error_log, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            m = re.search(r'"listening","url":"http://127\.0\.0\.1:(\d+)"', text)
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                raise RuntimeError("server exited with %s:\n%s" % (self.proc.returncode, text))
            time.sleep(0.02)
        self.proc.kill()
        raise RuntimeError("server did not start listening")

    def client(self, timeout=30):
        return Client(self.port, timeout)

    def stderr_text(self):
        with open(self.error_log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def access_lines(self):
        with open(self.access_log, "rb") as f:
            return [json.loads(line) for line in f.read().decode().splitlines() if line.strip()]

    def stop(self, timeout=60):
        """SIGTERM, wait, and return the exit code (0 for a clean stop; a
        sanitizer report makes it non-zero)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()

    def assert_clean_stop(self, test):
        code = self.stop()
        text = self.stderr_text()
        test.assertEqual(code, 0, "server exit code %s; stderr:\n%s" % (code, text[-6000:]))
        test.assertNotIn("ERROR: AddressSanitizer", text)
        test.assertNotIn("runtime error:", text)
        test.assertNotIn("WARNING: ThreadSanitizer", text)

