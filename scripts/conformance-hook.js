// Preloaded (`node --require`) into each test of Node's suite by
// scripts/conformance.js: `require('net')` and `require('dgram')` made by the
// tests and their helpers get muxnet's drop-in modules. muxnet's own
// requires (dist/ imports node:net itself) keep Node's builtins.
'use strict';
const Module = require('node:module');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist') + path.sep;
const targets = {
  net: path.join(dist, 'net', 'index.js'),
  dgram: path.join(dist, 'dgram.js'),
};

/** The drop-in module a test's `require(request)` gets, or undefined for Node's own. */
function redirected(request, parent) {
  const name = request.startsWith('node:') ? request.slice(5) : request;
  const target = Object.hasOwn(targets, name) ? targets[name] : undefined;
  return target !== undefined && !(parent && parent.filename && parent.filename.startsWith(dist)) ? target : undefined;
}

// Every require() goes through Module._load, `node:`-prefixed or not.
// require.resolve('net') stays 'net', as without the hook: a test helper
// that injects a fake `net` keyed by that name (sandboxed-module,
// proxyquire) finds it (redirecting _resolveFilename too broke log4js's
// own suite, 4 of 28 checks: a hunt, 2026-12-07).
const load = Module._load;
Module._load = function (request, parent, ...rest) {
  return load.call(this, redirected(request, parent) ?? request, parent, ...rest);
};
