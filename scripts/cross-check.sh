#!/bin/sh
# `cargo check` of the native crates for every platform the release publishes, on this
# Linux x64 machine, where rustup cannot add other targets (no network to it): Debian's
# rustc-web (bookworm-security) ships its standard library's source (rust-web-src), so
# cargo's build-std compiles std for each target itself. Nothing is installed on the
# system: the packages are unpacked into a cache directory. Checks, does not link: a
# target whose cfg'd code does not compile fails here rather than in the release workflow.
#
#   sh scripts/cross-check.sh [target ...]      (default: the release targets)
#
# Needs apt-get and dpkg (Debian or Ubuntu). MUXNET_CROSS_CACHE moves the cache
# (default ~/.cache/muxnet-cross).
set -eu
cd "$(dirname "$0")/.."
targets=${*:-"x86_64-apple-darwin aarch64-apple-darwin x86_64-pc-windows-msvc x86_64-unknown-linux-musl aarch64-unknown-linux-gnu aarch64-unknown-linux-musl"}

version=$(apt-cache policy rustc-web | awk '/Candidate:/ { print $2 }')
case $version in
  '' | '(none)') echo "cross-check: apt knows no rustc-web (a Debian bookworm source with -security is needed)" >&2; exit 1 ;;
esac
short=$(echo "$version" | sed 's/^\([0-9]*\.[0-9]*\).*/\1/')
cache=${MUXNET_CROSS_CACHE:-$HOME/.cache/muxnet-cross}
root=$cache/rustc-web-$version
if [ ! -x "$root/usr/bin/rustc" ]; then
  llvm=$(apt-cache depends "libstd-rust-web-$short" | awk '/Depends: libllvm/ { print $2; exit }')
  [ -n "$llvm" ] || { echo "cross-check: libstd-rust-web-$short names no libllvm" >&2; exit 1; }
  debs=$cache/debs-$version
  mkdir -p "$debs"
  # Stale package lists name files the mirror has replaced: refresh once and retry.
  (cd "$debs" && apt-get download rustc-web "libstd-rust-web-$short" libstd-rust-web-dev rust-web-src "$llvm") ||
    { apt-get update -qq && (cd "$debs" && apt-get download rustc-web "libstd-rust-web-$short" libstd-rust-web-dev rust-web-src "$llvm"); }
  # What a run stopped halfway left (a rename into it would nest).
  rm -rf "$root" "$root.partial"
  mkdir -p "$root.partial"
  for deb in "$debs"/*.deb; do dpkg -x "$deb" "$root.partial"; done
  mv "$root.partial" "$root"
  rm -rf "$debs"
fi

# rustup's cargo drives Debian's rustc (its sysroot is $root/usr, the std source in
# lib/rustlib/src/rust/library); RUSTC_BOOTSTRAP lets a stable rustc take -Zbuild-std.
export RUSTC="$root/usr/bin/rustc" RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=target/cross
export LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$RUSTC" --version
for target in $targets; do
  echo "cross-check: $target"
  # musl's cdylib needs a dynamic C runtime, as the napi CLI builds it.
  case $target in *-musl) flags='-C target-feature=-crt-static' ;; *) flags= ;; esac
  RUSTFLAGS=$flags cargo check --quiet -Zbuild-std=std,panic_abort --target "$target" -p muxnet-node
  # macOS runs the Rust tests too (npm test on the release workflow's macOS job).
  case $target in
    *-apple-darwin) RUSTFLAGS=$flags cargo check --quiet -Zbuild-std=std,panic_abort --target "$target" --workspace --exclude muxnet-node --all-targets ;;
  esac
done
echo "cross-check: $targets: ok"
