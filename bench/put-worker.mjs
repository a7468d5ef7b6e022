// The benchmark's HTTP client, on its own thread so it does not share the hub's event loop
// (a channel's client is another process in real life). It sends one PUT, reports when it
// sent it, and waits for the main thread to say the event arrived before sending the next.
// Plain JavaScript: worker threads do not inherit the main thread's TypeScript loader.
import http from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';

const { url, key, n } = workerData;
const agent = new http.Agent({ keepAlive: true });
const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
const body = (brand) =>
  JSON.stringify({
    id: 'PROP-1',
    name: { 'en-GB': 'Propagation probe' },
    brand,
    skus: [{ sku: 'PROP-1-A' }],
  });

function put(payload) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/v1/products/PROP-1`,
      { method: 'PUT', headers, agent },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const nextSignal = () => new Promise((resolve) => parentPort.once('message', resolve));

for (let i = 1; i <= n; i++) {
  const next = nextSignal();
  const sentAt = process.hrtime.bigint();
  const response = await put(body(`brand-${i}`));
  const answeredAt = process.hrtime.bigint();
  if (response.status !== 200) throw new Error(`PUT answered ${response.status}: ${response.body}`);
  parentPort.postMessage({ i, sentAt, answeredAt });
  await next;
}
agent.destroy();
