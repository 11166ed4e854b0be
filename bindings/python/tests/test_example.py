"""The operator example examples/seatmap_from_csv.py runs as documented."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import concert

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
SCRIPT = os.path.join(EXAMPLES, "seatmap_from_csv.py")
SAMPLE = os.path.join(EXAMPLES, "seatmap_sample.csv")


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))


class ExampleTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_dry_run_on_the_sample(self):
        r = run(SAMPLE, "--venue", "Olympic Hall", "--starts-at", "2030-05-01T19:00:00+09:00")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("loaded 72 seats", r.stdout)
        self.assertIn("2030-05-01T10:00+00:00 at Olympic Hall", r.stdout)
        self.assertRegex(r.stdout, r"VIP\s+165000\s+20\s+20\s+0\s+0")
        self.assertRegex(r.stdout, r"S\s+88000-99000\s+28\s+28\s+0\s+0")
        self.assertRegex(r.stdout, r"total\s+72\s+72\s+0\s+0")

    def test_load_into_a_durable_store_then_show(self):
        store = f"memory:{self.dir}/store"
        r = run(SAMPLE, "--store", store, "--title", "Spring Tour")
        self.assertEqual(r.returncode, 0, r.stderr)
        with concert.Engine(store) as engine:
            [c] = engine.concerts()
            self.assertEqual(c.title, "Spring Tour")
            [schedule] = engine.schedules(c.id)
            token = engine.enter_queue("operator-test", c.id).token
            engine.hold_seats(token, schedule.id, [1, 2, 3])
            engine.charge("operator-test", 165000)
            engine.pay(token, engine.hold_seats(token, schedule.id, [4]).id)
        r = run("--store", store, "--schedule-id", str(schedule.id))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"VIP\s+165000\s+20\s+16\s+3\s+1")
        self.assertIn("hhhX" + "." * 16, r.stdout)

    def test_malformed_csv(self):
        bad = self.write("bad.csv", "seat_no,grade,price\n1,VIP,100\n2,VIP,lots\n")
        r = run(bad)
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad.csv:3", r.stderr)
        twice = self.write("twice.csv", "seat_no,grade,price\n1,R,100\n2,R,100\n1,R,100\n")
        r = run(twice)
        self.assertEqual(r.returncode, 2)
        self.assertIn("seat 1 is listed twice (first on line 2)", r.stderr)
        header = self.write("header.csv", "seat,grade,price\n1,R,100\n")
        r = run(header)
        self.assertEqual(r.returncode, 2)
        self.assertIn("missing column(s) seat_no", r.stderr)

    def test_engine_refusal(self):
        r = run(SAMPLE, "--concert-id", "42")
        self.assertEqual(r.returncode, 1)
        self.assertIn("not_found", r.stderr)


if __name__ == "__main__":
    unittest.main()
