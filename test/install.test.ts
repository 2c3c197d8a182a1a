// What users get from npm: pack the package and the locally built platform
// package, install both in an empty directory that cannot see this repo's
// node_modules, and use muxnet from there. Needs no registry: the root
// package has no runtime dependencies.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.join(__dirname, '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const binary = readdirSync(root).find((f) => /^muxnet\..+\.node$/.test(f));
const platform = binary?.slice('muxnet.'.length, -'.node'.length);

let work: string;
let app: string;

function sh(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
}

/** `npm pack` into `work` (with its prepack/postpack scripts); returns the tarball's path. */
function pack(dir: string): string {
  const out = sh(npm, ['pack', '--json', '--pack-destination', work], dir);
  const [info] = JSON.parse(out.slice(out.indexOf('[')));
  return path.join(work, info.filename);
}

describe('installing the packed package', () => {
  beforeAll(() => {
    if (!binary) throw new Error('no muxnet.<platform>.node at the package root: run `npm run build` first');
    work = mkdtempSync(path.join(tmpdir(), 'muxnet-install-'));
    const platformDir = path.join(work, 'platform');
    cpSync(path.join(root, 'npm', platform!), platformDir, { recursive: true });
    cpSync(path.join(root, binary), path.join(platformDir, binary));
    const tarballs = [pack(root), pack(platformDir)];
    app = path.join(work, 'app');
    mkdirSync(app);
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    sh(npm, ['install', '--no-audit', '--no-fund', ...tarballs], app);
  }, 180_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('publishes only what users need', () => {
    const [info] = JSON.parse(sh(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], root));
    const files: string[] = info.files.map((f: { path: string }) => f.path);
    expect(files).toEqual(expect.arrayContaining(['index.js', 'index.d.ts', 'README.md', 'LICENSE', 'package.json', 'dist/net/index.js', 'dist/fast.js', 'dist/proxy.js', 'dist/cli.js']));
    const unexpected = files.filter((f) => !/^(dist\/.+|index\.js|index\.d\.ts|README\.md|LICENSE|package\.json)$/.test(f));
    expect(unexpected).toEqual([]);
    expect(files.some((f) => f.endsWith('.node') || f.endsWith('.rs') || f.startsWith('test/'))).toBe(false);
    // The benchmark harness needs the repository (cargo, target/): not for users.
    expect(files.filter((f) => f.startsWith('dist/bench/'))).toEqual([]);
  });

  it('lists every platform package as an optional dependency at its own version', () => {
    const installed = JSON.parse(readFileSync(path.join(app, 'node_modules', 'muxnet', 'package.json'), 'utf8'));
    const platforms = readdirSync(path.join(root, 'npm')).map((d) => JSON.parse(readFileSync(path.join(root, 'npm', d, 'package.json'), 'utf8')));
    expect(platforms).toHaveLength(7);
    expect(installed.optionalDependencies).toEqual(Object.fromEntries(platforms.map((p) => [p.name, installed.version])));
    for (const p of platforms) expect(p.version).toBe(installed.version);
    // No `prepare`: it builds a clone from source with scripts/, which is not published.
    expect(installed.scripts.prepare).toBeUndefined();
    // The repository's own manifest is left as it was.
    const own = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
    expect([own.optionalDependencies, own.scripts.prepare]).toEqual([undefined, 'node scripts/build-from-source.js']);
  });

  // A user's TypeScript, typings checked in full (no skipLibCheck), against the installed package:
  // until 2026-12-05 @types/node 24 refused them (a re-exported name it no longer has), and
  // TypeScript's default resolution for CommonJS (node10) found no types for the subpaths.
  it.each(['node10', 'node16', 'bundler'])('type-checks a TypeScript user of every entry point, moduleResolution %s, @types/node 20 and 24', (resolution) => {
    const user = `
      import type * as nodeNet from 'node:net';
      import type * as nodeDgram from 'node:dgram';
      import type * as http from 'node:http';
      import type * as tls from 'node:tls';
      import net from 'muxnet';
      import dgram from 'muxnet/dgram';
      import { listen } from 'muxnet/fast';
      import { serve } from 'muxnet/server';
      import { connect as connectAsync } from 'muxnet/async';
      import { connect as connectClient } from 'muxnet/client';
      import { createProxy } from 'muxnet/proxy';
      // The drop-in's classes pass where Node's are asked for.
      export const socket: nodeNet.Socket = net.connect({ port: 1, host: '127.0.0.1' });
      export const server: nodeNet.Server = net.createServer();
      export const udp: nodeDgram.Socket = dgram.createSocket('udp4');
      export const entries = [listen, serve, connectAsync, connectClient, createProxy];
      // And Node's own where code whose \`net\` is now muxnet names the drop-in's types (until
      // 2026-12-06 they were muxnet's classes: node's refused, listener arguments untyped).
      declare module 'node:net' {
        interface Socket { requestId?: string }
      }
      export function track(s: net.Socket, req: http.IncomingMessage, t: tls.TLSSocket, u: nodeDgram.Socket, h: http.Server) {
        const sockets = new Set<net.Socket>([s, req.socket, t]);
        const servers: net.Server[] = [h];
        const udps: dgram.Socket[] = [u];
        s.on('close', (hadError) => sockets.delete(hadError ? s : t));
        u.on('message', (msg, rinfo) => msg.length + rinfo.port);
        return [s.requestId, sockets, servers, udps];
      }
      // What muxnet's sockets have beyond @types/node 20's (Node 24's methods), and node's statics.
      export const extras = (s = net.connect({ port: 1 })) => [s.getTypeOfService(), s.setKeepAlive({ enable: true }), dgram.createSocket('udp4').bindSync({ port: 0 })];
      export const constructors: [typeof nodeNet.Socket, typeof nodeNet.Server, typeof nodeDgram.Socket] = [net.Socket, net.Server, dgram.Socket];
      export class Line extends net.Socket {}
      export class Udp extends dgram.Socket {}
      export const subclassed = [new Line().setTypeOfService(0), new Udp('udp4').bindSync()];
      // Options that may be undefined, as node's typings take them under exactOptionalPropertyTypes.
      const host: string | undefined = process.env.HOST;
      export const fromEnv = () => [
        net.connect({ port: 1, host, timeout: undefined }),
        new net.Socket({ readable: false, writable: false, noDelay: undefined }),
        net.createServer({ noDelay: undefined }).listen({ port: 0, host }),
        dgram.createSocket({ type: 'udp4', lookup: undefined }).bind({ port: 0, address: host }),
      ];
    `;
    writeFileSync(path.join(app, 'user.ts'), user);
    const module = { node10: 'commonjs', node16: 'node16', bundler: 'esnext' }[resolution];
    for (const types of ['node', 'node-24']) {
      // Only this @types/node where TypeScript looks for 'node' (undici-types names it too).
      const typeRoot = path.join(work, `types-${types}`);
      rmSync(typeRoot, { recursive: true, force: true });
      cpSync(path.join(root, 'node_modules', '@types', types), path.join(typeRoot, 'node'), { recursive: true });
      // With its undici-types (nested for node-24, hoisted to the root for the other).
      const undici = path.join(typeRoot, 'node', 'node_modules', 'undici-types');
      if (!existsSync(undici)) cpSync(path.join(root, 'node_modules', 'undici-types'), undici, { recursive: true });
      const config = { compilerOptions: { strict: true, exactOptionalPropertyTypes: true, target: 'es2022', module, moduleResolution: resolution, esModuleInterop: true, noEmit: true, skipLibCheck: false, typeRoots: [typeRoot], types: ['node'] }, files: ['user.ts'] };
      writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify(config));
      const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
      const checked = (() => {
        try {
          return sh(process.execPath, [tsc, '-p', 'tsconfig.json'], app);
        } catch (err) {
          return (err as { stdout?: string }).stdout ?? String(err);
        }
      })();
      expect(checked, `@types/${types}`).toBe('');
    }
  });

  it('loads with require() and import, from the platform package', () => {
    const script = `
      const assert = require('node:assert');
      const muxnet = require('muxnet');
      const fast = require('muxnet/fast');
      assert.strictEqual(typeof fast.listen, 'function');
      assert.strictEqual(typeof require('muxnet/proxy').createProxy, 'function');
      assert.ok(require.resolve('muxnet-${platform}'));
      // \`import net from 'muxnet'\` as TypeScript (esModuleInterop) and Babel compile it:
      // the module marked __esModule is its own default, as node:net is.
      const importDefault = (mod) => (mod && mod.__esModule ? mod : { default: mod });
      assert.strictEqual(importDefault(muxnet).default.createServer, muxnet.createServer);
      assert.strictEqual(importDefault(require('muxnet/dgram')).default.createSocket, require('muxnet/dgram').createSocket);
      assert.ok(!Object.keys(muxnet).includes('default'));
      import('muxnet/fast').then((esm) => {
        assert.strictEqual(esm.listen, fast.listen);
        const server = esm.listen({ port: 0 }, { onData: (c, d) => c.write(d) });
        const c = require('node:net').connect(server.port, '127.0.0.1', () => c.write('installed'));
        c.on('data', (d) => { console.log(String(d), Object.keys(muxnet).length > 0); c.end(); server.close(); });
      });`;
    expect(sh(process.execPath, ['-e', script], app).trim()).toBe('installed true');
  });

  it('runs `npx muxnet echo` and answers over loopback', async () => {
    // Its own process group: npx runs the bin through a shell, and the
    // signal must reach the echo server, not only npx.
    const child = spawn(npm, ['exec', '--', 'muxnet', 'echo', '--port', '0'], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // already gone
      }
    };
    const killer = setTimeout(() => signalGroup('SIGKILL'), 30_000);
    let out = '';
    child.stderr.on('data', (d) => (out += d));
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        const m = /listening on tcp 127\.0\.0\.1:(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.on('exit', () => reject(new Error(`exited before listening:\n${out}`)));
    });
    const net = await import('node:net');
    const echoed = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1', () => sock.write('via npx'));
      sock.on('data', (d) => {
        resolve(String(d));
        sock.end();
      });
      sock.on('error', reject);
    });
    expect(echoed).toBe('via npx');
    const exited = new Promise((r) => child.on('exit', r));
    signalGroup('SIGTERM');
    await exited;
    clearTimeout(killer);
    expect(out).toMatch(/SIGTERM, stopping: [01] open, 1 accepted, 7 bytes echoed/);
  });

  it('fails with one clear error when no binary can be found', () => {
    const empty = mkdtempSync(path.join(work, 'empty-'));
    // Point the loader at an empty directory, from where no platform package resolves.
    const loader = path.join(empty, 'index.js');
    cpSync(path.join(root, 'index.js'), loader);
    let err = '';
    try {
      sh(process.execPath, ['-e', `require(${JSON.stringify(loader)})`], empty);
    } catch (e) {
      err = (e as { stderr: string }).stderr;
    }
    expect(err).toContain(`muxnet: no native addon for ${platform}`);
    expect(err).toContain(`${path.join(empty, binary!)}: Cannot find module`);
    expect(err).toContain(`muxnet-${platform}: Cannot find module`);
    expect(err).toContain('npm run build');
  });
});
