"""`python3 -m pip install --no-build-isolation bindings/python` works offline
and the installed package imports on its own (no build tree, no
libconcert.so), without writing into the source tree.

Installs with --target into a temporary directory (a system install is the
README's business). With CONCERT_BUILD_DIR set (ctest sets it) setup.py
reuses this build tree instead of building the library again."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

BINDING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tree(path):
    return sorted(os.path.relpath(os.path.join(d, f), path)
                  for d, _, files in os.walk(path) for f in files)


class InstallTest(unittest.TestCase):
    def test_pip_install_offline(self):
        target = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, target)
        source_before = tree(BINDING)
        env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
        env.pop("PYTHONPATH", None)
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation",
                            "--no-deps", "--target", target, BINDING],
                           capture_output=True, text=True, env=env, timeout=900)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(tree(BINDING), source_before, "pip wrote into the source tree")

        check = ("import concert, sys\n"
                 "assert concert.__file__.startswith(sys.argv[1]), concert.__file__\n"
                 "with concert.Engine() as e:\n"
                 "    e.charge('u', 5)\n"
                 "    print(concert.__version__, e.balance('u'))\n")
        env = dict(os.environ, PYTHONPATH=target)
        r = subprocess.run([sys.executable, "-c", check, target], capture_output=True, text=True,
                           env=env, cwd=target, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.strip().endswith(" 5"), r.stdout)
        module = [f for f in os.listdir(os.path.join(target, "concert")) if f.startswith("_capi")]
        ldd = subprocess.run(["ldd", os.path.join(target, "concert", module[0])],
                             capture_output=True, text=True)
        self.assertNotIn("libconcert", ldd.stdout)   # linked statically


if __name__ == "__main__":
    unittest.main()
