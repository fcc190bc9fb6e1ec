// Workload C for bench/run.sh, k6 side: connect + one message + close, over and over. VUS VUs
// (default 20) for DURATION_S seconds; each iteration opens a WebSocket, sends the ~100-byte
// JSON request with a unique id, on the reply checks the id, counts the cycle and closes. The
// iteration ends when the socket has closed, and the next one connects at once.
//
// Environment (set by run.sh): TARGET, DURATION_S, VUS, SUMMARY.
import { WebSocket } from 'k6/experimental/websockets';
import { countErrors, handleSummary } from './common.js';
import { Counter } from 'k6/metrics';

const TARGET = __ENV.TARGET || 'ws://127.0.0.1:9001/';
const VUS = Number(__ENV.VUS || 20);
const DURATION_S = Number(__ENV.DURATION_S || 20);

const cycles = new Counter('cycles');
const mismatched = new Counter('mismatched');

export const options = {
  scenarios: {
    connect_cycle: {
      executor: 'constant-vus',
      vus: VUS,
      duration: `${DURATION_S}s`,
      gracefulStop: '5s',
    },
  },
};

const PAD = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV';
let seq = 0;

export default function () {
  const ws = new WebSocket(TARGET);
  let closing = false;
  seq += 1;
  const id = `${__VU}-${seq}`;
  ws.onopen = () => {
    ws.send(`{"type":"Request","request_id":"${id}","text":"${PAD}"}`);
  };
  ws.onmessage = (event) => {
    const reply = JSON.parse(event.data);
    if (reply.request_id !== id) {
      mismatched.add(1);
      return;
    }
    cycles.add(1);
    closing = true;
    ws.close();
  };
  countErrors(ws, () => closing);
}

export { handleSummary };
