// HTTP load for the reservation benchmark, on its own thread so the client does not share the
// hub's event loop: `clients` keep-alive connections, one request in flight on each, until
// `total` were answered. A minimal HTTP/1.1 client over plain sockets (as wrk or autocannon
// do): node's http client costs more CPU per request than the hub's handling of it, and on two
// shared cores that would measure the client. Plain JavaScript: worker threads do not inherit
// the main thread's TypeScript loader.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';

const { url, key, clients, total, hot, skus, locations } = workerData;
const target = new URL(url);

function pick(i) {
  if (hot) return { sku: 'B-HOT', locationId: 'L00' };
  const k = (i * 7919) % (skus * locations);
  return { sku: `B-${k % skus}`, locationId: `L${String(Math.floor(k / skus)).padStart(2, '0')}` };
}

function request(body) {
  return (
    `POST /v1/inventory/reservations HTTP/1.1\r\nhost: ${target.host}\r\n` +
    `authorization: Bearer ${key}\r\ncontent-type: application/json\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/** One keep-alive connection: send, wait for the whole response (status and body), repeat. */
function connection(onDone) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(target.port), target.hostname);
    socket.setNoDelay(true);
    let buffer = Buffer.alloc(0);
    let started = 0;
    const sendNext = () => {
      if (next >= total) {
        socket.end();
        resolve();
        return;
      }
      const i = next++;
      started = performance.now();
      socket.write(request(JSON.stringify({ ...pick(i), quantity: 1, ttlSeconds: 0 })));
    };
    socket.on('connect', sendNext);
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      for (;;) {
        const headEnd = buffer.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const head = buffer.subarray(0, headEnd).toString('latin1');
        const length = /\r\ncontent-length: *(\d+)/i.exec(head);
        if (!length) return reject(new Error(`no content-length in: ${head}`));
        const end = headEnd + 4 + Number(length[1]);
        if (buffer.length < end) return;
        const status = Number(head.slice(9, 12));
        buffer = buffer.subarray(end);
        onDone(status, performance.now() - started);
        sendNext();
      }
    });
  });
}

const latencies = [];
let next = 0;
let granted = 0;
let failure = null;
const started = performance.now();
await Promise.all(
  Array.from({ length: clients }, () =>
    connection((status, ms) => {
      latencies.push(ms);
      if (status === 201) granted++;
      else if (status !== 409) failure ??= new Error(`reservation answered ${status}`);
    }),
  ),
);
if (failure) throw failure;
parentPort.postMessage({ seconds: (performance.now() - started) / 1000, latencies, granted });
