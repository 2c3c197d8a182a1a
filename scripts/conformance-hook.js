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

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, parent, ...rest) {
  return redirected(request, parent) ?? resolve.call(this, request, parent, ...rest);
};
// Node loads a `node:`-prefixed builtin in Module._load without asking
// _resolveFilename: `require('node:net')` is redirected there.
const load = Module._load;
Module._load = function (request, parent, ...rest) {
  return load.call(this, redirected(request, parent) ?? request, parent, ...rest);
};
