// The echo handlers of the `muxnet/server` bench cells (a module, so worker
// threads can load them): the fast API's echo as a callback handler, and
// the same through the async API.
import { ConnectionHandler } from '../server';

export class Echo extends ConnectionHandler {
  onData(chunk: Buffer): void {
    if (!this.connection.write(chunk)) this.connection.pause();
  }

  onDrain(): void {
    this.connection.resume();
  }
}

export class AsyncEcho extends ConnectionHandler {
  async handle(): Promise<void> {
    for await (const chunk of this.stream) await this.stream.write(chunk);
  }
}
