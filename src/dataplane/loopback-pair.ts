/**
 * Two ends of a real TCP connection on 127.0.0.1, for tests and benchmarks of the transfer
 * protocol: `client` is the connecting socket, `server` the accepted one.
 */
import { createServer, connect, type Socket } from 'node:net';

export interface LoopbackPair {
  readonly client: Socket;
  readonly server: Socket;
}

export async function loopbackPair(): Promise<LoopbackPair> {
  const listener = createServer();
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(0, '127.0.0.1', () => resolve());
  });
  try {
    const address = listener.address();
    if (address === null || typeof address === 'string') throw new Error('loopback listener has no TCP address');
    const accepted = new Promise<Socket>((resolve) => listener.once('connection', resolve));
    const client = connect(address.port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
    });
    return { client, server: await accepted };
  } finally {
    listener.close();
  }
}
