// A worker thread of `workers` mode: loads the handler module and serves it
// on this thread's reactor, reporting errors to the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { serveHere, validateHandler, type ErrorSource } from './index';
import { loadHandler, serializeError, type PoolMessage, type WorkerMessage, type WorkerSetup } from './pool';

const port = parentPort!;
const setup = workerData as WorkerSetup;
const post = (m: WorkerMessage) => port.postMessage(m);

try {
  const Handler = validateHandler(loadHandler(setup.handler));
  const onError = (err: Error, source: ErrorSource) => post({ type: 'error', error: serializeError(err), remoteAddress: source.remoteAddress, connection: source.connection });
  const server = serveHere(Handler, { ...setup.options, onError }, setup.mode, setup.highWaterMark, setup.listening);
  // Adoptions are acknowledged in batches: the acceptor forgets those tickets.
  let adopted = 0;
  const acknowledge = () => {
    post({ type: 'adopted', upTo: adopted });
    adopted = 0;
  };
  port.on('message', (m: PoolMessage) => {
    if (m.type === 'adopt') {
      server.local!.adopt!(m.ticket);
      if (adopted === 0) setImmediate(acknowledge);
      adopted = m.ticket;
    } else if (m.type === 'served') {
      server.local!.served = m.address;
    } else {
      // With the server closed and the port closed, nothing keeps the thread alive.
      void server.close({ timeout: m.timeout }).finally(() => port.close());
    }
  });
  post({ type: 'ready', address: server.address() });
} catch (err) {
  post({ type: 'failed', error: serializeError(err) });
  port.close();
}
