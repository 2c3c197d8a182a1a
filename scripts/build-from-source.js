#!/usr/bin/env node
// `prepare` hook (runs on `npm install`/`npm ci` in a checkout, never when
// installing the published package): make a source checkout usable.
// - No loadable native addon (no prebuilt platform package, no local build)?
//   Build it from source with @napi-rs/cli (needs a Rust toolchain).
// - No compiled JavaScript (a git checkout)? Compile the TypeScript.
'use strict';
const { execSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit' });

function nativeLoads() {
  try {
    require(path.join(root, 'index.js'));
    return true;
  } catch {
    return false;
  }
}

const fromSource = existsSync(path.join(root, 'crates'));
if (fromSource && !nativeLoads()) {
  console.log('muxnet: no prebuilt binary for this platform; building the addon from source (cargo)');
  run('npm run build:native');
}
if (existsSync(path.join(root, 'src')) && !existsSync(path.join(root, 'dist', 'cli.js'))) {
  run('npm run build:ts');
}

// npm links a package's bins into the *dependent's* node_modules/.bin; in a
// source checkout there is no dependent, so link our own for
// `node_modules/.bin/muxnet` (npx finds it either way).
const cli = path.join(root, 'dist', 'cli.js');
const binDir = path.join(root, 'node_modules', '.bin');
if (fromSource && existsSync(cli) && existsSync(binDir)) {
  const { chmodSync, rmSync, symlinkSync } = require('node:fs');
  chmodSync(cli, 0o755);
  const link = path.join(binDir, 'muxnet');
  rmSync(link, { force: true });
  symlinkSync(path.relative(binDir, cli), link);
}
