"""The static page in a real browser: headless Chromium (Debian's chromium)
loads /?autotest=1, whose script enters the queue, holds a seat, charges
the wallet and pays; the test reads the outcome from the dumped DOM, checks
it over the API, and saves a screenshot of the page after the flow.

Fails when chromium is not installed.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
# Virtual time runs the page's timers fast; network waits pause it.
BUDGET_MS = "20000"


def chromium(url, *extra):
    profile = tempfile.mkdtemp(prefix="concert-chromium-")
    try:
        argv = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--no-first-run", "--disable-extensions",
                "--disable-dev-shm-usage", "--user-data-dir=" + profile,
                "--virtual-time-budget=" + BUDGET_MS] + list(extra) + [url]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class PageTest(unittest.TestCase):
    def setUp(self):
        self.server = harness.Server()
        self.c = self.server.client()

    def tearDown(self):
        self.c.close()
        self.server.assert_clean_stop(self)

    def check_reservation(self, result):
        seat = int(result["seat-no"])
        reservation = int(result["reservation-id"])
        r = self.c.get("/v1/reservations/%d?userId=%s" % (reservation, result["user-id"]))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "CONFIRMED")
        self.assertEqual(r.json()["seatNos"], [seat])
        seats = {s["seatNo"]: s["status"] for s in self.c.get("/v1/schedules/1/seats").json()}
        self.assertEqual(seats[seat], "RESERVED")

    def test_hold_and_pay_in_the_browser(self):
        url = self.server.url + "/?autotest=1"
        dom = chromium(url, "--dump-dom")
        self.assertEqual(dom.returncode, 0, dom.stderr[-3000:])
        m = re.search(r'<div id="autotest-result"([^>]*)>([^<]*)</div>', dom.stdout)
        self.assertIsNotNone(m, dom.stdout[-3000:])
        attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', m.group(1)))
        self.assertEqual(attrs.get("result"), "pass", m.group(2))
        self.check_reservation(attrs)

        shot = os.path.join(harness.artifacts_dir(), "http_page.png")
        if os.path.exists(shot):
            os.unlink(shot)
        r = chromium(url, "--hide-scrollbars", "--window-size=1280,1100", "--screenshot=" + shot)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        with open(shot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertGreater(os.path.getsize(shot), 10000)
        print("screenshot saved to", shot)
        # The second run booked the next seat.
        a = self.c.get("/_test/audit").json()
        self.assertEqual(a["reservations"], 2)
        self.assertEqual(a["seatMismatches"], 0)


if __name__ == "__main__":
    if not BROWSER:
        print("chromium is not installed (scripts/deps test installs it)", file=sys.stderr)
        sys.exit(2)
    unittest.main(verbosity=2)
