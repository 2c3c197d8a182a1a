#!/usr/bin/env node
// The published package.json lists every platform package (npm/<platform>)
// as an optional dependency at the package's own version; the repository's
// does not, because `npm ci` rejects a lockfile whose optional packages the
// registry does not have yet; nor does it keep `prepare`. `npm pack`/`npm publish` run this:
//   prepack  → add them (keeping the original beside it)
//   postpack → put the original back
'use strict';
const { copyFileSync, existsSync, readdirSync, readFileSync, renameSync, writeFileSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const file = path.join(root, 'package.json');
const read = (f) => JSON.parse(readFileSync(f, 'utf8'));
const saved = `${file}.orig`;

const step = process.argv[2];
if (step === 'add') {
  const pkg = read(file);
  copyFileSync(file, saved);
  // One package per target, as `napi create-npm-dirs` laid them out in npm/.
  const platforms = readdirSync(path.join(root, 'npm')).map((dir) => read(path.join(root, 'npm', dir, 'package.json')).name);
  pkg.optionalDependencies = Object.fromEntries(platforms.map((name) => [name, pkg.version]));
  // `prepare` builds a clone from source (scripts/, which is not published): an installed
  // package has dist/ and its platform package, and npm would only ask to approve the script.
  delete pkg.scripts.prepare;
  writeFileSync(file, `${JSON.stringify(pkg, null, 2)}\n`);
} else if (step === 'restore') {
  if (existsSync(saved)) renameSync(saved, file);
} else {
  console.error('usage: release-manifest.js add|restore');
  process.exit(2);
}
