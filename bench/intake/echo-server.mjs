#!/usr/bin/env node
/**
 * The client-ceiling target: a node:http server that reads the request body and
 * answers 202 with a JSON body shaped like the real intake answer, doing no
 * other work. Run as a child process (like the service) so the load generator
 * and the server are separate processes on the same cores, as in the real
 * measurement. Prints `listening <port>` on stdout; stops on SIGTERM.
 */
import { createServer } from 'node:http';

const answer = Buffer.from(
  JSON.stringify({
    requestId: '00000000-0000-4000-8000-000000000000',
    format: 's3',
    accepted: 1,
    duplicates: 0,
    ignored: 0,
    ignoredReasons: [],
    jobs: [{ taskId: 'bench', key: 'k/0' }],
  }),
);

const server = createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(202, { 'content-type': 'application/json; charset=utf-8', 'content-length': answer.length });
    res.end(answer);
  });
});
server.keepAliveTimeout = 72_000; // as fastify's default: idle sockets survive between phases
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`listening ${typeof addr === 'object' && addr ? addr.port : 0}\n`);
});
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
