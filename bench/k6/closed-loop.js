// Workload A for bench/run.sh, k6 side: closed loop, 50 VUs, one request in flight each.
// Each VU opens ONE WebSocket for the whole run, sends a ~100-byte JSON request carrying a
// unique id, and on each message parses the JSON, checks the id is the one in flight, records
// the round-trip time in a Trend and counts it, then sends the next request.
//
// Environment (set by run.sh): TARGET (ws://127.0.0.1:PORT/), DURATION_S (seconds of load),
// VUS (default 50), SUMMARY (path of the JSON summary written by handleSummary).
//
// k6 v1.1.0 has the event-loop WebSocket API as k6/experimental/websockets (it is exposed as
// k6/websockets only in later releases); the legacy blocking API is k6/ws.
import { WebSocket } from 'k6/experimental/websockets';
import { countErrors, handleSummary } from './common.js';
import { Counter, Trend } from 'k6/metrics';

const TARGET = __ENV.TARGET || 'ws://127.0.0.1:9001/';
const DURATION_MS = Number(__ENV.DURATION_S || 20) * 1000;
const VUS = Number(__ENV.VUS || 50);

const roundtrips = new Counter('roundtrips');
const mismatched = new Counter('mismatched');
const rtt = new Trend('rtt', true);

export const options = {
  scenarios: {
    closed_loop: {
      executor: 'per-vu-iterations',
      vus: VUS,
      iterations: 1, // one iteration = one connection held for DURATION_MS
      maxDuration: `${Math.ceil(DURATION_MS / 1000) + 15}s`,
    },
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max', 'count'],
};

const PAD = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV';

export default function () {
  const ws = new WebSocket(TARGET);
  let seq = 0;
  let inFlight = '';
  let sentAt = 0;
  let stopping = false;

  function sendNext() {
    seq += 1;
    inFlight = `${__VU}-${seq}`;
    sentAt = Date.now();
    ws.send(`{"type":"Request","request_id":"${inFlight}","text":"${PAD}"}`);
  }

  ws.onopen = () => {
    setTimeout(() => {
      stopping = true;
      ws.close();
    }, DURATION_MS);
    sendNext();
  };

  ws.onmessage = (event) => {
    const reply = JSON.parse(event.data);
    if (reply.request_id !== inFlight) {
      mismatched.add(1);
      return;
    }
    rtt.add(Date.now() - sentAt);
    roundtrips.add(1);
    if (!stopping) {
      sendNext();
    }
  };

  countErrors(ws, () => stopping);
}

export { handleSummary };
