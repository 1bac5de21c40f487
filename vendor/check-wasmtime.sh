#!/usr/bin/env bash
# Checks that vendor/wasmtime is the published `wasmtime` crate of the version
# it names, with exactly the changes in the diff of its PATCHES.md: fetches the
# published crate through cargo (which checks its checksum against the
# registry's index), applies that diff to it, and compares the result with the
# copy, file by file. Any other difference fails, with the files named.
#
#   bash vendor/check-wasmtime.sh
#
# CI runs it (.ci/run). It needs the package registry, or the crate already
# in cargo's cache.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
copy="$root/vendor/wasmtime"

version=$(awk '
    /^\[/ { in_package = ($0 == "[package]") }
    in_package && $1 == "version" { gsub(/[" ]/, "", $3); print $3; exit }
' "$copy/Cargo.toml")
if [ -z "$version" ]; then
    echo "error: $copy/Cargo.toml names no [package] version" >&2
    exit 1
fi
for crate in wasmtime wasmtime-wasi; do
    if ! grep -q "^$crate = { version = \"=$version\"" "$root/Cargo.toml"; then
        echo "error: Cargo.toml does not pin $crate =$version, the version of vendor/wasmtime" >&2
        exit 1
    fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A throwaway package that depends on the published crate, so that cargo
# fetches it (and nothing of hero_logic's [patch] applies).
mkdir -p "$work/fetch/src"
cat >"$work/fetch/Cargo.toml" <<EOF
[package]
name = "fetch-published-wasmtime"
version = "0.0.0"
edition = "2021"

[dependencies]
wasmtime = { version = "=$version", default-features = false }
EOF
: >"$work/fetch/src/lib.rs"
(cd "$work/fetch" && CARGO_TARGET_DIR="$work/target" cargo fetch --quiet)

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
crate=$(find "$cargo_home/registry/cache" -name "wasmtime-$version.crate" -print -quit)
if [ -z "$crate" ]; then
    echo "error: cargo fetched wasmtime $version but its .crate is not in $cargo_home/registry/cache" >&2
    exit 1
fi

mkdir "$work/published"
tar xzf "$crate" -C "$work/published"
expected="$work/published/wasmtime-$version"
# What packaging adds, and what the copy adds: not part of the code.
rm -f "$expected/.cargo_vcs_info.json" "$expected/Cargo.toml.orig"
cp "$copy/PATCHES.md" "$expected/PATCHES.md"

# The diff is the one fenced ```diff block of PATCHES.md.
awk '/^```diff$/ { inside = 1; next } /^```$/ { inside = 0 } inside' "$copy/PATCHES.md" >"$work/patches.diff"
if [ ! -s "$work/patches.diff" ]; then
    echo "error: PATCHES.md has no \`\`\`diff block" >&2
    exit 1
fi
if ! patch --quiet --batch --forward -p1 -d "$expected" <"$work/patches.diff"; then
    echo "error: PATCHES.md's diff does not apply to the published wasmtime $version" >&2
    exit 1
fi
find "$expected" -name '*.orig' -delete

if ! diff -r "$expected" "$copy" >"$work/differences"; then
    echo "error: vendor/wasmtime differs from the published wasmtime $version plus PATCHES.md:" >&2
    head -100 "$work/differences" >&2
    exit 1
fi
echo "vendor/wasmtime is the published wasmtime $version with PATCHES.md's changes, and nothing else"
