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

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, parent, ...rest) {
  const name = request.startsWith('node:') ? request.slice(5) : request;
  const target = Object.hasOwn(targets, name) ? targets[name] : undefined;
  if (target !== undefined && !(parent && parent.filename && parent.filename.startsWith(dist))) return target;
  return resolve.call(this, request, parent, ...rest);
};
