// Propagation probe, on its own thread: posts one POS sale at a time with the POS key and
// waits for the availability change on a server-sent-events stream opened with the web key.
// Sales and returns alternate, so the stock stays put however long it runs. Reports the latency
// of each in milliseconds. Plain JavaScript (see reserve-http-worker.mjs).
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parentPort, workerData } from 'node:worker_threads';

const { url, posKey, webKey, n } = workerData;
const agent = new http.Agent({ keepAlive: true });
let waiting = null;

// The stream: parse `data:` lines, resolve the waiting sample when its change arrives.
await new Promise((resolve, reject) => {
  const req = http.get(
    `${url}/v1/inventory/stream?marketCode=DE&channel=web&sku=B-1&locationId=L00`,
    { headers: { authorization: `Bearer ${webKey}` } },
    (res) => {
      if (res.statusCode !== 200) reject(new Error(`stream answered ${res.statusCode}`));
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk) => {
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (data && waiting) {
            const arrived = performance.now();
            const done = waiting;
            waiting = null;
            done(arrived);
          }
        }
      });
      resolve();
    },
  );
  req.on('error', reject);
});
await sleep(200);

function postSale(i) {
  const body = JSON.stringify({
    sales: [
      {
        saleId: `probe-${Date.now()}-${i}`,
        occurredAt: new Date().toISOString(),
        lines: [{ sku: 'B-1', quantity: i % 2 === 0 ? 1 : -1 }],
      },
    ],
  });
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/v1/inventory/locations/L00/pos-sales`,
      {
        method: 'POST',
        agent,
        headers: { authorization: `Bearer ${posKey}`, 'content-type': 'application/json' },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`POS answered ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const samples = [];
for (let i = 0; i < n; i++) {
  const arrival = new Promise((resolve) => (waiting = resolve));
  const sent = performance.now();
  await postSale(i);
  samples.push((await arrival) - sent);
}
parentPort.postMessage(samples);
