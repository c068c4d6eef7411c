#!/usr/bin/env node
/**
 * A TCP proxy that adds a fixed delay in each direction, in its own process:
 * `node bench/copy/latency-proxy.mjs <target port> <one-way ms>` prints
 * `{"port":N}` on stdout once listening and runs until killed. Put in front
 * of an s3rver it makes loopback look like a link with a round trip of
 * 2 × <one-way ms>, so the bench can compare tools where requests wait on the
 * network, as a copy between two clouds or regions does (this machine has no
 * netem qdisc to do it in the kernel).
 *
 * Every chunk read from one side is written to the other <one-way ms> later;
 * timers of one duration fire in the order they were set, so bytes keep their
 * order. Bandwidth is not limited. A side with more than HIGH_WATER bytes on
 * their way or unread by the other side is paused (pipeLate); an end is passed
 * on after the same delay, an error closes both sides.
 */
import { createConnection, createServer } from 'node:net';

const HIGH_WATER = 8 * 1024 * 1024;

const targetPort = Number(process.argv[2]);
const oneWayMs = Number(process.argv[3]);
if (!(targetPort > 0) || !(oneWayMs >= 0)) {
  process.stderr.write('usage: latency-proxy.mjs <target port> <one-way ms>\n');
  process.exit(2);
}

/**
 * Forward `from` to `to`, each chunk `oneWayMs` late. Reading pauses while
 * more than HIGH_WATER bytes are on their way or waiting in `to` (a receiver
 * that reads slowly holds the sender back, as a real link would; without it
 * the proxy would take a whole object off the sender at once).
 */
function pipeLate(from, to) {
  let inFlight = 0;
  const backlog = () => inFlight + to.writableLength;
  const maybeResume = () => {
    if (from.isPaused() && backlog() <= HIGH_WATER) from.resume();
  };
  from.on('data', (chunk) => {
    inFlight += chunk.length;
    if (backlog() > HIGH_WATER) from.pause();
    setTimeout(() => {
      inFlight -= chunk.length;
      if (!to.destroyed) to.write(chunk);
      maybeResume();
    }, oneWayMs);
  });
  to.on('drain', maybeResume);
  from.on('end', () => setTimeout(() => to.end(), oneWayMs));
}

const server = createServer((client) => {
  client.setNoDelay(true);
  const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
  upstream.setNoDelay(true);
  pipeLate(client, upstream);
  pipeLate(upstream, client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close);
  upstream.on('error', close);
  client.on('close', () => setTimeout(() => upstream.destroy(), oneWayMs));
  upstream.on('close', () => setTimeout(() => client.destroy(), oneWayMs));
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
// Killed by the bench when it ends: open connections go with the process.
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
