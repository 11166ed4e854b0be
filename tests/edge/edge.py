"""Runs the example edge (examples/edge/nginx.conf) in a temporary prefix.

Standard library only. Environment (set by ctest from bindings/lua):
CONCERT_NGINX (nginx binary), CONCERT_LIB (libconcert.so), CONCERT_LUA and
CONCERT_LUA_CPATH (lua5.4 and the directory of concert_core.so, to sign
test tokens), CONCERT_HTTP_SERVER (for tests/http/harness.py).
"""
import getpass
import os
import socket
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LUA_DIR = os.path.join(ROOT, "bindings", "lua")
TEMPLATE = os.path.join(ROOT, "examples", "edge", "nginx.conf")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(template, values):
    with open(template) as f:
        text = f.read()
    for key, value in values.items():
        text = text.replace("@%s@" % key, str(value))
    if "@" in "".join(line.split("#")[0] for line in text.splitlines()):
        raise ValueError("unrendered placeholder in %s" % template)
    return text


class Nginx:
    """nginx -p DIR -c DIR/nginx.conf, in the foreground (daemon off)."""

    def __init__(self, conf_text, prefix=None):
        self.binary = os.environ.get("CONCERT_NGINX", "/usr/sbin/nginx")
        self.prefix = prefix or tempfile.mkdtemp(prefix="concert-edge-")
        for sub in ("logs", "temp"):
            os.makedirs(os.path.join(self.prefix, sub), exist_ok=True)
        self.conf = os.path.join(self.prefix, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf_text)
        self.error_log = os.path.join(self.prefix, "logs", "error.log")
        # -e: the early error log, before the configuration is read (Debian's
        # default, /var/log/nginx, may not be writable).
        argv = [self.binary, "-p", self.prefix + "/", "-c", self.conf, "-e", self.error_log]
        check = subprocess.run(argv + ["-t"], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError("nginx -t failed:\n%s%s" % (check.stdout, check.stderr))
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_listening(self, port, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited:\n" + self.errors())
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not listen on %d:\n%s" % (port, self.errors()))

    def errors(self):
        try:
            with open(self.error_log) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()  # fast shutdown
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def edge_conf(edge_port, upstream_ports, secret_file, concert_id=1):
    return render(TEMPLATE, {
        "USER": getpass.getuser(),
        "EDGE_PORT": edge_port,
        "UPSTREAM_A": upstream_ports[0],
        "UPSTREAM_B": upstream_ports[1],
        "LUA_DIR": LUA_DIR,
        "CONCERT_LIB": os.environ["CONCERT_LIB"],
        "SECRET_FILE": secret_file,
        "CONCERT_ID": concert_id,
    })


def sign_token(secret, **claims):
    """A token signed by the Lua SWIG module (concert.sign) under lua5.4."""
    lua = os.environ.get("CONCERT_LUA", "lua5.4")
    fields = ", ".join("%s = %s" % (k, ('"%s"' % v) if isinstance(v, str) else int(v))
                       for k, v in claims.items())
    script = ('local c = require "concert"; io.write(assert(c.sign(os.getenv("EDGE_SECRET"), { %s })))'
              % fields)
    env = dict(os.environ)
    env["EDGE_SECRET"] = secret
    env["LUA_PATH"] = LUA_DIR + "/?.lua;;"
    env["LUA_CPATH"] = os.environ["CONCERT_LUA_CPATH"] + ";;"
    out = subprocess.run([lua, "-e", script], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError("signing failed: " + out.stderr)
    return out.stdout
