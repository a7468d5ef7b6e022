// HTTP load for the reservation benchmark, on its own thread so the client does not share the
// hub's event loop: `clients` keep-alive requests in flight until `total` were answered.
// Plain JavaScript: worker threads do not inherit the main thread's TypeScript loader.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';

const { url, key, clients, total, hot, skus, locations } = workerData;
const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };

function pick(i) {
  if (hot) return { sku: 'B-HOT', locationId: 'L00' };
  const k = (i * 7919) % (skus * locations);
  return { sku: `B-${k % skus}`, locationId: `L${String(Math.floor(k / skus)).padStart(2, '0')}` };
}

function post(body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/v1/inventory/reservations`,
      { method: 'POST', headers, agent },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const latencies = [];
let next = 0;
let granted = 0;
const started = performance.now();
await Promise.all(
  Array.from({ length: clients }, async () => {
    while (next < total) {
      const i = next++;
      const t0 = performance.now();
      const status = await post(JSON.stringify({ ...pick(i), quantity: 1, ttlSeconds: 0 }));
      latencies.push(performance.now() - t0);
      if (status === 201) granted++;
      else if (status !== 409) throw new Error(`reservation answered ${status}`);
    }
  }),
);
parentPort.postMessage({ seconds: (performance.now() - started) / 1000, latencies, granted });
agent.destroy();
