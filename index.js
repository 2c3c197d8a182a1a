// Loads muxnet's native addon: a local build (`npm run build:native` puts
// `muxnet.<platform>.node` here), else the prebuilt platform package
// (`muxnet-<platform>`, an optional dependency), else one clear error.
// Hand-written instead of napi's generated loader: 60 lines for the seven
// targets we ship, and an error that says how to build from source.
'use strict';

const path = require('node:path');

/** `linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`, … as napi names them. */
function platformName() {
  const { platform, arch } = process;
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`;
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

function isMusl() {
  // The ldd script names its libc; cheaper than a process report (~5 ms),
  // which is the fallback where there is no ldd.
  try {
    return require('node:fs').readFileSync('/usr/bin/ldd', 'utf8').includes('musl');
  } catch {
    const header = process.report?.getReport?.().header;
    return header ? !header.glibcVersionRuntime : false;
  }
}

function load() {
  const name = platformName();
  const dir = process.env.MUXNET_NATIVE_DIR || __dirname;
  const candidates = [path.join(dir, `muxnet.${name}.node`), `muxnet-${name}`];
  const failures = [];
  for (const candidate of candidates) {
    try {
      return require(candidate);
    } catch (err) {
      failures.push(`  ${candidate}: ${String(err.message).split('\n')[0]}`);
    }
  }
  const err = new Error(
    [
      `muxnet: no native addon for ${name} (${process.platform}, ${process.arch}, Node ${process.versions.node}).`,
      'Tried:',
      ...failures,
      'Prebuilt binaries are published for linux-x64-gnu, linux-x64-musl, linux-arm64-gnu, linux-arm64-musl,',
      'darwin-x64, darwin-arm64 and win32-x64-msvc. If yours is listed, reinstall without --no-optional/--omit=optional.',
      'Otherwise build from source: install a Rust toolchain (https://rustup.rs), then in a clone of muxnet',
      'run `npm install` (it runs `npm run build`), or `npm run build` in an existing checkout.',
    ].join('\n'),
  );
  err.code = 'ERR_MUXNET_NATIVE_NOT_FOUND';
  throw err;
}

module.exports = load();
