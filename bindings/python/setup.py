"""Builds the `concert` package with the project's CMake (offline).

    python3 -m pip install --no-build-isolation bindings/python

--no-build-isolation makes pip use the installed setuptools (Debian:
python3-setuptools) instead of downloading one into a fresh environment, so
no network is needed. The compiled module is built by CMake from this
source tree: the SWIG module plus libconcert linked statically, so the
installed package needs no libconcert.so. Needs cmake, a C compiler, swig
and python3-dev (scripts/packages/core.build and python.build).

CONCERT_BUILD_DIR=<dir> reuses an already configured CMake build tree (the
one scripts/run or ctest built) instead of configuring a private one.
"""

import atexit
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))


def library_version():
    with open(os.path.join(SOURCE_ROOT, "include", "concert", "common.h")) as f:
        for line in f:
            if line.startswith("#define CONCERT_VERSION "):
                return line.split('"')[1]
    raise RuntimeError("CONCERT_VERSION not found in include/concert/common.h")


def scratch_dir():
    """Where setuptools builds: never the source tree (pip builds in place)."""
    build_dir = os.environ.get("CONCERT_BUILD_DIR")
    if build_dir:
        return os.path.join(os.path.abspath(build_dir), "bindings", "python", "setuptools")
    path = tempfile.mkdtemp(prefix="concert-setup-")
    atexit.register(shutil.rmtree, path, True)
    return path


class CMakeBuild(build_ext):
    """Builds the CMake target concert_python and copies its outputs into the package."""

    def run(self):
        build_dir = os.environ.get("CONCERT_BUILD_DIR")
        if build_dir:
            build_dir = os.path.abspath(build_dir)
            if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
                sys.exit(f"CONCERT_BUILD_DIR={build_dir} is not a configured CMake build tree")
        else:
            build_dir = os.path.abspath(os.path.join(self.build_temp, "cmake"))
            self.configure(build_dir)
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "concert_python",
                               "-j", str(os.cpu_count() or 1)])
        self.copy_outputs(os.path.join(build_dir, "bindings", "python", "python", "concert"))

    def configure(self, build_dir):
        subprocess.check_call([
            "cmake", "-S", SOURCE_ROOT, "-B", build_dir,
            "-DCMAKE_BUILD_TYPE=Release",
            "-DCONCERT_WITH_PYTHON=ON",
            "-DCONCERT_BUILD_TESTS=OFF",
            "-DCONCERT_BUILD_BENCH=OFF",
            "-DCONCERT_WITH_EXAMPLES=OFF",
            # -Werror is for the project's CI, not for users' compilers.
            "-DCONCERT_WERROR=OFF",
            # The interpreter running pip is the one the module is for.
            f"-DPython3_EXECUTABLE={sys.executable}",
        ])

    def copy_outputs(self, package_dir):
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        module = os.path.join(package_dir, "_capi" + suffix)
        if not os.path.exists(module):
            found = glob.glob(os.path.join(package_dir, "_capi*.so"))
            sys.exit(f"{module} was not built (found {found}): the CMake tree was configured "
                     f"for another Python; configure it with -DPython3_EXECUTABLE={sys.executable}")
        target = os.path.join(self.build_lib, "concert")
        os.makedirs(target, exist_ok=True)
        shutil.copy2(module, self.get_ext_fullpath("concert._capi"))
        shutil.copy2(os.path.join(package_dir, "capi.py"), os.path.join(target, "capi.py"))


SCRATCH = scratch_dir()

setup(
    name="libconcert",
    version=library_version(),
    description="Python binding of libconcert, an embeddable concert reservation engine",
    long_description=open(os.path.join(SOURCE_ROOT, "docs", "python.md")).read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=["concert"],
    package_data={"concert": ["py.typed"]},
    ext_modules=[Extension("concert._capi", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
    options={"build": {"build_base": os.path.join(SCRATCH, "build")},
             "egg_info": {"egg_base": SCRATCH}},
)
