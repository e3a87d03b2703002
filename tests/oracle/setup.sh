#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Build the memblock oracle: our driver.c linked with the kernel's own,
# unmodified mm/memblock.c and the stubs of its userspace harness
# (tools/testing/memblock), taken from Debian's linux-source-VERSION package.
#
#   tests/oracle/setup.sh 7.3      # prints the driver's path on stdout
#
# Everything lives in ${KHO_REPLAY_CACHE:-$HOME/.cache/kho-replay}/oracle/VERSION,
# outside the repository.  A second run with the cache present only prints the
# path.  Runs for different versions are independent; runs for the same version
# serialise on a lock file.  The package is fetched with a private apt source
# list (the machine's apt configuration is read, never changed); set
# KHO_REPLAY_DEB_DIR to a directory holding linux-source-VERSION_*.deb to skip
# the download.  liburcu-dev (needed by tools/lib/slab.c) is installed with
# apt-get when missing.
set -euo pipefail

die() { echo "oracle setup: $*" >&2; exit 1; }
log() { echo "oracle setup: $*" >&2; }

[ $# -eq 1 ] || die "usage: $0 VERSION (7.2 or 7.3)"
version=$1
case $version in
    7.2|7.3) ;;
    *) die "no oracle for kernel $version (known: 7.2 7.3)" ;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=${KHO_REPLAY_CACHE:-${HOME:-/tmp}/.cache/kho-replay}/oracle/$version
mkdir -p "$root"
exec 9>"$root/.lock"
flock 9

# The binary is named after the driver source, so editing driver.c rebuilds it
# while an unchanged tree costs nothing.
sha=$(cat "$here/driver.c" "$here/setup.sh" | sha256sum | cut -c1-16)
bin=$root/driver-$sha
if [ -x "$bin" ]; then
    echo "$bin"
    exit 0
fi

# The harness build needs these paths of the source tree (memblock-spec §7).
paths=(
    Makefile
    mm/memblock.c
    include/linux/memblock.h
    include/linux/pci_ids.h
    arch/x86/include/asm/asm.h
    arch/x86/include/asm/cmpxchg.h
    tools/testing/memblock
    tools/testing/selftests/kselftest.h
    tools/include
    tools/arch/x86/include
    tools/lib/slab.c
    tools/lib/cmdline.c
    tools/lib/ctype.c
)

fetch_deb() {
    local dl=$root/dl apt=$root/apt
    if [ -n "${KHO_REPLAY_DEB_DIR:-}" ]; then
        local d
        d=$(ls "$KHO_REPLAY_DEB_DIR"/linux-source-"$version"_*.deb 2>/dev/null | tail -n1 || true)
        if [ -n "$d" ]; then
            echo "$d"
            return
        fi
    fi
    mkdir -p "$dl" "$apt/lists/partial" "$apt/cache/archives/partial"
    local mirror keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    # Read the mirror from the machine's apt setup; never hard-code one.
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    if [ -z "$mirror" ]; then
        mirror=$(awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
            /etc/apt/sources.list 2>/dev/null || true)
    fi
    [ -n "$mirror" ] || die "no Debian mirror found in /etc/apt"
    # 7.3 is in trixie-backports, 7.2 in sid.
    printf 'deb [signed-by=%s] %s trixie-backports main\ndeb [signed-by=%s] %s sid main\n' \
        "$keyring" "$mirror" "$keyring" "$mirror" > "$apt/sources.list"
    local o=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
             -o "Dir::Cache::archives=$apt/cache/archives" -q)
    [ "$(id -u)" = 0 ] && o+=(-o APT::Sandbox::User=root)
    log "downloading linux-source-$version"
    apt-get "${o[@]}" update >&2
    rm -f "$dl"/*.deb
    (cd "$dl" && apt-get "${o[@]}" download "linux-source-$version" >&2)
    ls "$dl"/linux-source-"$version"_*.deb | tail -n1
}

command -v xz >/dev/null || die "xz is missing (apt-get install xz-utils)"
src=$root/src
tree=$src/linux-source-$version
if [ ! -f "$src/.complete" ]; then
    deb=$(fetch_deb)
    log "extracting $(basename "$deb")"
    rm -rf "$src" "$root/src.tmp"
    mkdir -p "$root/src.tmp"
    dpkg --fsys-tarfile "$deb" | tar -xf - -C "$root/src.tmp" "./usr/src/linux-source-$version.tar.xz"
    tar -xJf "$root/src.tmp/usr/src/linux-source-$version.tar.xz" -C "$root/src.tmp" \
        "${paths[@]/#/linux-source-$version/}"
    rm -rf "$root/src.tmp/usr" "$root/dl" "$root/apt"
    sha256sum "$root/src.tmp/linux-source-$version/mm/memblock.c" | cut -d' ' -f1 > "$root/src.tmp/memblock.c.sha256"
    touch "$root/src.tmp/.complete"
    mv "$root/src.tmp" "$src"
fi

# Build tools and liburcu headers (tools/lib/slab.c includes <urcu/uatomic.h>).
missing_packages() {
    command -v gcc >/dev/null || echo gcc libc6-dev
    command -v make >/dev/null || echo make
    echo '#include <urcu/uatomic.h>' | gcc -E -x c - >/dev/null 2>&1 || echo liburcu-dev
}
if [ -n "$(missing_packages)" ]; then
    # setups for several versions may get here together: one apt-get at a time
    exec 8>"$root/../.apt.lock"
    flock 8
    missing=$(missing_packages | xargs)
    if [ -n "$missing" ]; then
        log "installing $missing"
        sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        export DEBIAN_FRONTEND=noninteractive
        # shellcheck disable=SC2086 # a list of package names
        $sudo apt-get install -y -q $missing >&2 || { $sudo apt-get update -q >&2 &&
            $sudo apt-get install -y -q $missing >&2; } || die "cannot install $missing"
    fi
    exec 8>&-
fi

log "building the driver against $tree/mm/memblock.c"
mb=$tree/tools/testing/memblock
# The harness Makefile's own targets create its header and source symlinks.
make -s -C "$mb" include memblock.c >&2
cflags=(-I. -I../../include -Wall -O2 -D CONFIG_PHYS_ADDR_T_64BIT
        -D CONFIG_NUMA -D CONFIG_NODES_SHIFT=4 -D CONFIG_MEMBLOCK_KHO_SCRATCH)
# memblock_alloc_hugetlb() exists since 7.3.
grep -q 'memblock_alloc_hugetlb' "$tree/include/linux/memblock.h" && cflags+=(-D HAVE_ALLOC_HUGETLB)
tmp=$(mktemp "$root/driver.XXXXXX")
(cd "$mb" && gcc "${cflags[@]}" -o "$tmp" "$here/driver.c" memblock.c lib/slab.c mmzone.c \
    ../../lib/slab.c ../../lib/cmdline.c >&2) || { rm -f "$tmp"; die "build failed"; }
chmod 755 "$tmp"
mv "$tmp" "$bin"
log "built $bin"
echo "$bin"
