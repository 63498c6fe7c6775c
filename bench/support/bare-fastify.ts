/**
 * The baseline server of bench/api: a bare Fastify route on 127.0.0.1 answering GET / with the
 * body in the file named by argv[2] (the bytes Ferry answered), no logging, no other work.
 * Prints `listening on http://127.0.0.1:PORT` on stdout.
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const path = process.argv[2];
if (path === undefined) throw new Error('usage: bare-fastify.ts BODY_FILE');
const body = readFileSync(path);
const app = Fastify({ logger: false });
app.get('/', (_request, reply) => reply.type('application/json; charset=utf-8').send(body));
const url = await app.listen({ host: '127.0.0.1', port: 0 });
console.log(`listening on ${url}`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
