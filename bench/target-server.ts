/**
 * The benchmark's target API, run as its own process so that it competes for the CPU the same
 * way in the direct and relayed runs. `GET /1k` answers 1 KB of text; `GET /bytes/N` streams N
 * bytes with backpressure. Listens on 127.0.0.1 only and prints its URL.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const ONE_KB = Buffer.alloc(1024, 'x');
const CHUNK = Buffer.alloc(256 * 1024, 'y');
/** Largest body served, so that a typo cannot stream forever. */
const MAX_BYTES = 4 * 1024 ** 3;

const server = createServer((req, res) => {
  if (req.url === '/1k') {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': ONE_KB.length });
    res.end(ONE_KB);
    return;
  }
  const m = /^\/bytes\/(\d+)$/.exec(req.url ?? '');
  const total = m ? Number(m[1]) : NaN;
  if (!Number.isSafeInteger(total) || total > MAX_BYTES) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
  let left = total;
  const pump = () => {
    while (left > 0) {
      const part = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
      left -= part.length;
      if (!res.write(part)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  res.on('close', () => (left = 0));
  pump();
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`Target on http://127.0.0.1:${port}\n`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
