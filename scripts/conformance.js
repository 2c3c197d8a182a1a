#!/usr/bin/env node
// Runs Node's own tests of net and dgram (and others that use them) against muxnet's drop-in layer:
//
//   npm run conformance -- <node-checkout> [--suite net|http|others] [--reference] [--strict] [--jobs N] [--timeout S] [--filter TEXT]
//
// Every test-net-*.js and test-dgram-*.js of the checkout's test/parallel,
// test/sequential, test/pummel and test/async-hooks (and the cluster tests that use net or
// dgram) runs in its own `node`, with `net`/`dgram` redirected to dist/ (see
// conformance-hook.js; NODE_OPTIONS carries it into the test's own child
// processes). `--reference` runs the same tests on Node's own modules, for
// the figure to compare with. Tests muxnet cannot run by design are skipped
// with a reason. It prints one line per failing or skipped test, then
// `conformance: N passed, M failed, K skipped`; the exit code is 0 (it is a
// measurement) unless `--strict` and something failed. Build first (dist/).
// `--suite http` runs instead the test-http*, test-https* and test-http2*
// files that require `net` themselves (raw clients and servers talking to
// node:http, `createConnection` agents, `server.emit('connection', socket)`):
// node:http keeps Node's own net inside, so only those exercise the drop-in
// as its transport. `--suite others` runs the other files (tls, child-process,
// worker, stream, process, diagnostics channels, ...) that require net or
// dgram themselves: the drop-in under TLS, in child processes and workers, as
// a stream; files that test what differs by design are skipped by name.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const HOOK = path.join(__dirname, 'conformance-hook.js');
const ESM_HOOK = path.join(__dirname, 'conformance-esm.mjs');

/** Why a test is not run, from its source; undefined when it runs. */
const SKIPS = [
  // Internals that reach into node:net's, node:dgram's or their helpers' own state (--expose-internals
  // for another internal, such as a util, is no reason).
  [/require\(['"]internal\/(dgram|net|child_process|js_stream_socket|async_hooks|timers|repl|http2\/core)['"]\)/, "needs node:net's or node:dgram's internals (internal/net, internal/dgram, timers, ...)"],
  // libuv handle wraps (internalBinding('uv') constants are fine); three files only read a handle
  // the way a user can.
  [
    /internalBinding\(['"](tcp_wrap|pipe_wrap|udp_wrap|stream_wrap|http_parser|async_wrap|js_stream)['"]\)|process\.binding\(|\._handle\b|\bhandle:\s*\{/,
    'libuv handle internals (_handle, tcp_wrap, pipe_wrap)',
    undefined,
    new Set(['test-net-bytes-read.js', 'test-net-socket-constructor.js', 'test-http-agent-uninitialized-with-handle.js']),
  ],
  // node:net reports its connects to PerformanceObserver as entries of type
  // 'net'; only Node's internals can create an entry of that type.
  [/observe\(\{\s*type:\s*'net'/, "perf_hooks entries of type 'net' (no public API creates them)"],
  [/^net\.(\w+|Socket\.prototype\.\w+) =/m, 'replaces a net export and expects node:http/http2 to call it', 'http'],
];

/**
 * Files of `--suite others` that test what muxnet does differently by design,
 * by name, each with what in its source meets the difference.
 */
const TLS_LATE_CONNECT = "calls connect() on the socket after tls.connect({ socket }): node's tls waits for 'connect' only on node:net's own sockets (instanceof); it writes its hello to any other stream at once";
const BY_DESIGN = new Map([
  ['test-process-getactivehandles.js', "counts libuv handles (process._getActiveHandles); muxnet's sockets live in its reactor"],
  ['test-process-getactiveresources-track-active-handles.js', "counts libuv handles (process.getActiveResourcesInfo: TCPSocketWrap, TCPServerWrap); muxnet's sockets live in its reactor"],
  ['test-trace-events-net.js', "reads the trace events node:net's native handles emit (node.net.native)"],
  ['test-trace-events-net-abstract-socket.js', "reads the trace events node:net's native handles emit (node.net.native)"],
  ['test-process-beforeexit.js', "listens and closes a server inside 'beforeExit' and expects another: node's closing libuv handle keeps the loop alive one more turn, muxnet's reactor holds none"],
  ['test-tls-net-socket-keepalive.js', TLS_LATE_CONNECT],
  ['test-tls-on-empty-socket.js', TLS_LATE_CONNECT],
  ['test-tls-wrap-econnreset-socket.js', TLS_LATE_CONNECT],
  ...['test-graph.pipeconnect.js', 'test-graph.shutdown.js', 'test-graph.tcp.js', 'test-pipeconnectwrap.js', 'test-shutdownwrap.js', 'test-tcpwrap.js', 'test-udpsendwrap.js', 'test-udpwrap.js', 'test-writewrap.js'].map((name) => [
    name,
    "checks the libuv wrap resources async_hooks sees for node:net's and node:dgram's handles and requests (TCPWRAP, WRITEWRAP, ...); muxnet's sockets run their events through an AsyncResource each",
  ]),
  ['test-tls-socket-close.js', "expects the TLS socket destroyed when the raw socket emits 'close', and that 'close' after a second setImmediate: through a JSStreamSocket the TLS socket is destroyed later"],
]);

function parseArgs(argv) {
  const opts = { dir: undefined, suite: 'net', reference: false, strict: false, jobs: 2, timeout: 20, filter: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--reference') opts.reference = true;
    else if (a === '--strict') opts.strict = true;
    else if (a === '--jobs') opts.jobs = Number(argv[++i]);
    else if (a === '--timeout') opts.timeout = Number(argv[++i]);
    else if (a === '--filter') opts.filter = argv[++i];
    else if (a === '--suite') opts.suite = argv[++i];
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else opts.dir = a;
  }
  if (!Object.hasOwn(SUITES, opts.suite)) throw new Error(`--suite: one of ${Object.keys(SUITES).join(', ')}`);
  if (!opts.dir) throw new Error('usage: npm run conformance -- <node-checkout> [--suite net|http|others] [--reference] [--strict] [--jobs N] [--timeout S] [--filter TEXT]');
  return opts;
}

/** The checkout's root (the parent of test/), given it or its test/ dir. */
function nodeRoot(dir) {
  const abs = path.resolve(dir);
  if (fs.existsSync(path.join(abs, 'test', 'parallel'))) return abs;
  if (fs.existsSync(path.join(abs, 'parallel'))) return path.dirname(abs);
  throw new Error(`${dir}: no test/parallel here`);
}

function flagsOf(source) {
  const m = source.match(/^\/\/ Flags:(.*)$/m);
  return m ? m[1].trim().split(/\s+/).filter(Boolean) : [];
}

function runOne(root, file, opts, slot) {
  const source = fs.readFileSync(file, 'utf8');
  const skip = SKIPS.find(([re, , suite, runs]) => (!suite || suite === opts.suite) && !runs?.has(path.basename(file)) && re.test(source));
  if (skip) return Promise.resolve({ status: 'skipped', reason: skip[1] });
  if (opts.suite === 'others' && BY_DESIGN.has(path.basename(file))) return Promise.resolve({ status: 'skipped', reason: BY_DESIGN.get(path.basename(file)) });
  const env = { ...process.env, TEST_THREAD_ID: String(slot), NODE_TEST_DIR: opts.tmp, NODE_SKIP_FLAG_CHECK: '1' };
  // The ESM hook only for .mjs tests: preloaded into every test, four cluster tests hung (forked workers did not exit).
  const esm = file.endsWith('.mjs') ? ` --import ${JSON.stringify(ESM_HOOK)}` : '';
  if (!opts.reference) env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --require ${JSON.stringify(HOOK)}${esm}`.trim();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...flagsOf(source), file], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    const collect = (d) => (output = (output + d).slice(-4000));
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      // The test and whatever it spawned.
      try { process.kill(-child.pid, 'SIGKILL'); } catch { child.kill('SIGKILL'); }
    }, opts.timeout * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (hung) return resolve({ status: 'failed', reason: `hang (no exit within ${opts.timeout} s)`, output });
      if (code === 0) return resolve({ status: 'passed' });
      resolve({ status: 'failed', reason: signal ? `killed by ${signal}` : `exit ${code}: ${firstError(output)}`, output });
    });
  });
}

/** The line of the output that says what went wrong. */
function firstError(output) {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  const line = lines.find((l) => /^(\w*Error|AssertionError|Mismatched|Error \[|.*\bcode: ')/.test(l)) ?? lines.find((l) => /error/i.test(l)) ?? lines[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

/** A test that requires or imports net or dgram itself (the module the hooks redirect). */
const USES_NET = /(require\(|import\(|from )['"](node:)?(net|dgram)['"]/;
const USES_TCP = /(require\(|import\(|from )['"](node:)?net['"]/;

/**
 * Which files of a test dir each suite runs, by name, and, for the families
 * whose own modules keep Node's net inside, only those that require the
 * redirected module themselves (a cluster test that listens through net or
 * dgram shares its sockets with the primary; an http test with a raw net
 * client, server or `createConnection`).
 */
const SUITES = {
  net: [[/^test-(net|dgram)-.*\.m?js$/], [/^test-cluster-.*\.m?js$/, USES_NET]],
  http: [[/^test-https?2?(-.*)?\.m?js$/, USES_TCP]],
  // the drop-in under TLS, in child processes and workers, as a stream
  others: [[/^test-(?!(net|dgram|cluster)-|https?2?(-|\.m?js$)).*\.m?js$/, USES_NET]],
};

/** The checkout's test/<dir> files of the suite (none if it has no such dir). */
function testsIn(root, dir, opts) {
  const at = path.join(root, 'test', dir);
  if (!fs.existsSync(at)) return [];
  const picks = (f) => SUITES[opts.suite].some(([name, uses]) => name.test(f) && (!uses || uses.test(fs.readFileSync(path.join(at, f), 'utf8'))));
  return fs.readdirSync(at)
    .filter((f) => (!opts.filter || f.includes(opts.filter)) && picks(f))
    .sort();
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const root = nodeRoot(opts.dir);
  if (!opts.reference && !fs.existsSync(path.join(__dirname, '..', 'dist', 'net', 'index.js'))) throw new Error('dist/ is missing: npm run build:ts first');
  opts.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'muxnet-conformance-'));
  const results = new Map();
  // test/parallel side by side; sequential and pummel (heavier, or bound to
  // fixed ports) one at a time, as Node's own runner does.
  for (const [dir, jobs] of [['parallel', opts.jobs], ['sequential', 1], ['pummel', 1], ['async-hooks', opts.jobs]]) {
    const files = testsIn(root, dir, opts);
    let next = 0;
    const worker = async (slot) => {
      while (next < files.length) {
        const name = files[next++];
        const result = await runOne(root, path.join(root, 'test', dir, name), opts, slot);
        const label = dir === 'parallel' ? name : `${dir}/${name}`;
        results.set(label, result);
        if (result.status !== 'passed') console.log(`${result.status === 'failed' ? 'FAIL' : 'SKIP'} ${label}: ${result.reason}`);
        if (result.status === 'failed' && process.env.CONFORMANCE_VERBOSE) console.log(result.output.replace(/^/gm, '    '));
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, jobs) }, (_, i) => worker(i)));
  }
  fs.rmSync(opts.tmp, { recursive: true, force: true });
  const count = (s) => [...results.values()].filter((r) => r.status === s).length;
  const failed = count('failed');
  console.log(`conformance: ${count('passed')} passed, ${failed} failed, ${count('skipped')} skipped`);
  process.exitCode = opts.strict && failed > 0 ? 1 : 0;
}

main().catch((err) => {
  console.error(err.message);
  process.exitCode = 2;
});
