#!/bin/sh
# Installs the built library into a scratch prefix, then builds and runs the
# quickstart example against it with nothing but pkg-config, as a user would.
set -eu
build=$1 prefix=$2 source=$3
rm -rf "$prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
pcdir=$(dirname "$(find "$prefix" -name concert.pc | head -n 1)")
export PKG_CONFIG_PATH="$pcdir"
# The sanitizer flags of the build under test are not the consumer's business.
cc -std=c11 -Wall -Wextra -Werror -o "$prefix/quickstart" "$source" \
   $(pkg-config --cflags --libs concert) -Wl,-rpath,"$(pkg-config --variable=libdir concert)"
out=$("$prefix/quickstart")
echo "$out" | grep -q "^paid: payment 1, reservation 1" || { echo "$out"; exit 1; }
echo "installed library works through pkg-config"
