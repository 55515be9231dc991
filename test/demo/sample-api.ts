/** The demo's small "internal API": JSON endpoints behind Basic auth, on loopback. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Credentials the sample API accepts. */
export const SAMPLE_USER = 'warehouse';
/** The sample API's password (a demo value, not a real secret). */
export const SAMPLE_PASSWORD = 'demo-password-123';

const inventory = [
  { sku: 'BOLT-M8', name: 'Hex bolt M8', stock: 1200 },
  { sku: 'NUT-M8', name: 'Hex nut M8', stock: 3400 },
  { sku: 'WASH-8', name: 'Washer 8 mm', stock: 950 },
];

/** Starts the sample API on 127.0.0.1 and a free port. */
export async function startSampleApi(): Promise<{ server: Server; url: string }> {
  const expected = `Basic ${Buffer.from(`${SAMPLE_USER}:${SAMPLE_PASSWORD}`).toString('base64')}`;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.headers.authorization !== expected) {
        res.setHeader('www-authenticate', 'Basic realm="warehouse"');
        return json(401, { error: 'unauthorized' });
      }
      const url = new URL(req.url ?? '/', 'http://sample');
      if (req.method === 'GET' && url.pathname === '/api/inventory')
        return json(200, { items: inventory });
      if (req.method === 'GET' && url.pathname.startsWith('/api/inventory/')) {
        const item = inventory.find((i) => i.sku === url.pathname.split('/').pop());
        return item ? json(200, item) : json(404, { error: 'no such item' });
      }
      if (req.method === 'POST' && url.pathname === '/api/orders') {
        const order = JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<
          string,
          unknown
        >;
        return json(201, { orderId: `ORD-${Math.floor(Math.random() * 1e6)}`, received: order });
      }
      json(404, { error: 'not found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
