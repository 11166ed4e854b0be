#!/bin/sh
# Installs the built library into a scratch prefix, then builds and runs the
# quickstart example against it as users would: once with pkg-config, once
# with CMake's find_package(concert).
set -eu
build=$1 prefix=$2 source=$3
rm -rf "$prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
pcdir=$(dirname "$(find "$prefix" -name concert.pc | head -n 1)")
export PKG_CONFIG_PATH="$pcdir"

expect_flow() { # program
	out=$("$1")
	echo "$out" | grep -q "^paid: payment 1, reservation 1" || { echo "$out"; exit 1; }
}

# The sanitizer flags of the build under test are not the consumer's business.
cc -std=c11 -Wall -Wextra -Werror -o "$prefix/quickstart-pc" "$source" \
   $(pkg-config --cflags --libs concert) -Wl,-rpath,"$(pkg-config --variable=libdir concert)"
expect_flow "$prefix/quickstart-pc"
echo "installed library works through pkg-config"

consumer=$prefix/cmake-consumer
mkdir -p "$consumer"
cp "$source" "$consumer/quickstart.c"
cat >"$consumer/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.20)
project(consumer C)
find_package(concert 0.1 REQUIRED)
add_executable(quickstart quickstart.c)
target_link_libraries(quickstart PRIVATE concert::concert)
CMAKE
cmake -S "$consumer" -B "$consumer/build" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_BUILD_RPATH="$(pkg-config --variable=libdir concert)" >/dev/null
cmake --build "$consumer/build" >/dev/null
expect_flow "$consumer/build/quickstart"
echo "installed library works through find_package(concert)"
