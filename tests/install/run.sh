#!/usr/bin/env bash
# Installs a build into a temporary prefix and builds small programs against
# the installed copy, the two ways a user would: pkg-config and CMake's
# find_package. Also checks the shared library's ABI surface (only mpm_*
# symbols exported, SONAME libmpmlib.so.0).
#
# usage: run.sh BUILD_DIR THIS_DIR      (ctest passes both; $CMAKE optional)
set -euo pipefail

build=${1:?usage: run.sh BUILD_DIR THIS_DIR}
here=${2:?usage: run.sh BUILD_DIR THIS_DIR}
cmake=${CMAKE:-cmake}
cc=${CC:-cc}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mpmlib-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

die() { echo "install test FAILED: $*" >&2; exit 1; }
step() { echo "== $*"; }

# Runs a command quietly; on failure shows its output and stops.
run() {
    local what=$1; shift
    if ! "$@" >"$tmp/last.log" 2>&1; then
        cat "$tmp/last.log" >&2
        die "$what"
    fi
}

prefix=$tmp/prefix

# A sanitizer build of the library needs the same runtime in the consumer:
# an ASan/TSan libmpmlib.so loaded by a plain program fails at start-up.
san_flags=""
cache="$build/CMakeCache.txt"
[ -f "$cache" ] || die "$build is not a CMake build directory (no CMakeCache.txt)"
if grep -Eiq '^MPMLIB_SANITIZE:BOOL=(ON|1|TRUE|YES)$' "$cache"; then
    san_flags="-fsanitize=address,undefined"
elif grep -Eiq '^MPMLIB_TSAN:BOOL=(ON|1|TRUE|YES)$' "$cache"; then
    san_flags="-fsanitize=thread"
fi

step "install into $prefix"
run "cmake --install $build --prefix $prefix" "$cmake" --install "$build" --prefix "$prefix"
so=$(find "$prefix" -name 'libmpmlib.so' -print -quit)
[ -n "$so" ] || die "libmpmlib.so not installed under $prefix"
libdir=$(dirname "$so")
[ -f "$prefix/include/mpmlib/mpmlib.h" ] || die "include/mpmlib/mpmlib.h not installed"
[ -f "$libdir/pkgconfig/mpmlib.pc" ] || die "mpmlib.pc not installed in $libdir/pkgconfig"
[ -f "$libdir/cmake/mpmlib/mpmlibConfig.cmake" ] || die "mpmlibConfig.cmake not installed"

step "ABI: SONAME and exported symbols"
soname=$(objdump -p "$so" | awk '$1 == "SONAME" { print $2 }')
[ "$soname" = "libmpmlib.so.0" ] || die "SONAME is '$soname', expected libmpmlib.so.0"
leaked=$(nm -D --defined-only "$so" | awk '{ print $NF }' | grep -v '^mpm_' || true)
[ -z "$leaked" ] || die "symbols exported besides mpm_*: $(tr '\n' ' ' <<<"$leaked" | head -c 400)"
nm -D --defined-only "$so" | grep -q ' mpm_config_new$' || die "mpm_config_new not exported"

step "ABI: the static library defines only mpm_* globally"
ar=$(find "$prefix" -name 'libmpmlib.a' -print -quit)
[ -n "$ar" ] || die "libmpmlib.a not installed under $prefix"
leaked=$(nm --defined-only -g "$ar" 2>/dev/null | awk 'NF == 3 { print $3 }' | grep -v '^mpm_' || true)
[ -z "$leaked" ] || die "static library defines besides mpm_*: $(tr '\n' ' ' <<<"$leaked" | head -c 400)"
nm --defined-only -g "$ar" | grep -q ' mpm_config_new$' || die "mpm_config_new not in libmpmlib.a"

step "pkg-config lists only what the library links"
# Each listed package must be one the library calls into. (The symbol list
# is captured first: `nm | grep -q` under pipefail fails when grep stops
# reading early and nm dies of SIGPIPE.)
undefined=$(nm -D --undefined-only "$so")
requires=$(grep -E '^Requires(\.private)?:' "$libdir/pkgconfig/mpmlib.pc" || true)
for pair in "libuv: uv_" "libssl: SSL_" "libcrypto: EVP_"; do
    pkg=${pair%%:*} sym=${pair#*: }
    if grep -q "$pkg" <<<"$requires" && ! grep -q " $sym" <<<"$undefined"; then
        die "mpmlib.pc requires $pkg, which libmpmlib.so does not use"
    fi
done

step "consumer built with pkg-config"
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
flags=$(pkg-config --cflags --libs mpmlib) || die "pkg-config --cflags --libs mpmlib failed"
case "$flags" in
    *"$prefix"*) ;;
    *) die "pkg-config flags do not point into the install prefix: $flags" ;;
esac
# shellcheck disable=SC2086  # flags are a word list by design
run "compile with pkg-config flags ($flags)" \
    "$cc" -std=c11 -Wall -Werror $san_flags -o "$tmp/consumer_pc" "$here/consumer/consumer.c" $flags
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/consumer_pc" \
    || die "the pkg-config consumer failed to run"

step "consumer built with find_package(mpmlib)"
run "configure the find_package consumer" \
    "$cmake" -S "$here/consumer" -B "$tmp/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS="$san_flags" -DCMAKE_EXE_LINKER_FLAGS="$san_flags"
run "build the find_package consumer" "$cmake" --build "$tmp/consumer-build"
# CMake gives the consumer an RPATH to the prefix's libdir; LD_LIBRARY_PATH
# covers a toolchain that does not.
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/consumer-build/consumer" \
    || die "the find_package consumer failed to run"
"$tmp/consumer-build/consumer_static" || die "the static find_package consumer failed to run"
"$tmp/consumer-build/consumer_clash" || die "the static consumer with clashing symbols failed to run"
if ldd "$tmp/consumer-build/consumer_static" | grep -q libmpmlib; then
    die "consumer_static links libmpmlib.so instead of the static library"
fi

echo "install test passed"
