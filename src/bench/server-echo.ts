/**
 * The echo server the benchmark runs on `muxnet/server`: the callback
 * handler of ./echo-handler in one of its modes, or (`async`) the async
 * handler in reactor mode. Run in its own process:
 *   node server-echo.js <reactor|serial|workers|async> <host> <port>
 * Prints `listening on tcp HOST:PORT` once ready.
 */
import { serve, type ServeOptions } from '../server';

const [mode = 'reactor', host = '127.0.0.1', port = '0'] = process.argv.slice(2);
const options: ServeOptions = { port: Number(port), host, onError: () => {} };
if (mode === 'workers') options.workers = 2;
else options.mode = mode === 'serial' ? 'serial' : 'reactor';

void serve({ module: require.resolve('./echo-handler'), export: mode === 'async' ? 'AsyncEcho' : 'Echo' }, options).then((server) => {
  console.log(`listening on tcp ${host}:${server.port}`);
  process.on('SIGTERM', () => process.exit(0));
});
