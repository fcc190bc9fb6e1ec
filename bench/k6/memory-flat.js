// The memory-flatness benchmark (bench/scripts/memory_flat.sh), k6 side: what bench/scenarios/memory-flat.toml
// asks of wsstorm. VUS VUs (1 000), started over 5 s, each opens ONE WebSocket for the run and
// every 100 ms sends a ~100-byte JSON request with a unique id, correlated by hand: a Map of
// the ids in flight with their send times; a request older than TIMEOUT_MS (2 000) is a
// timeout and leaves the Map; a request that would make more than MAX_IN_FLIGHT (15) wait at
// once is not sent (capped). The server never answers, so every request times out.
//
// Environment (set by memory_flat.sh): TARGET, DURATION_S, VUS, SUMMARY.
import { WebSocket } from 'k6/experimental/websockets';
import { countErrors, handleSummary } from './common.js';
import { Counter } from 'k6/metrics';

const TARGET = __ENV.TARGET || 'ws://127.0.0.1:9001/';
const DURATION_MS = Number(__ENV.DURATION_S || 600) * 1000;
const VUS = Number(__ENV.VUS || 1000);
const RAMP_MS = 5000;
const EVERY_MS = 100;
const TIMEOUT_MS = 2000;
const MAX_IN_FLIGHT = 15;

const requests = new Counter('requests');
const timeouts = new Counter('timeouts');
const capped = new Counter('capped');
const answered = new Counter('answered');

export const options = {
  scenarios: {
    memory_flat: {
      executor: 'per-vu-iterations',
      vus: VUS,
      iterations: 1, // one iteration = one connection held until the end
      maxDuration: `${Math.ceil((DURATION_MS + RAMP_MS) / 1000) + 30}s`,
    },
  },
};

const PAD = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV';

export default function () {
  // The ramp: VU k opens its connection k/VUS of the way through it.
  const startIn = Math.floor(((__VU - 1) * RAMP_MS) / VUS);
  const endAt = Date.now() + DURATION_MS;
  setTimeout(() => {
    const ws = new WebSocket(TARGET);
    const pending = new Map();
    let seq = 0;
    let stopping = false;
    let tick = null;

    ws.onopen = () => {
      tick = setInterval(() => {
        const now = Date.now();
        for (const [id, sent] of pending) {
          if (now - sent < TIMEOUT_MS) {
            break; // in send order, so in deadline order
          }
          pending.delete(id);
          timeouts.add(1);
        }
        if (now >= endAt) {
          stopping = true;
          clearInterval(tick);
          timeouts.add(pending.size); // the end waits for none of them
          ws.close();
          return;
        }
        if (pending.size >= MAX_IN_FLIGHT) {
          capped.add(1);
          return;
        }
        seq += 1;
        const id = `${__VU}-${seq}`;
        pending.set(id, now);
        requests.add(1);
        ws.send(`{"type":"Request","request_id":"${id}","text":"${PAD}"}`);
      }, EVERY_MS);
    };

    ws.onmessage = (event) => {
      const id = JSON.parse(event.data).request_id;
      if (pending.delete(id)) {
        answered.add(1);
      }
    };

    countErrors(ws, () => stopping);
  }, startIn);
}

export { handleSummary };
