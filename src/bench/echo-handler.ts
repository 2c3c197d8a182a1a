// The echo handler of the `muxnet/server` bench cells: the fast API's echo,
// as a callback handler (a module, so worker threads can load it).
import { ConnectionHandler } from '../server';

export class Echo extends ConnectionHandler {
  onData(chunk: Buffer): void {
    if (!this.connection.write(chunk)) this.connection.pause();
  }

  onDrain(): void {
    this.connection.resume();
  }
}
