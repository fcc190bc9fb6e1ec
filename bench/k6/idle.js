// Workload B for bench/run.sh, k6 side: VUS idle connections. Each VU opens one WebSocket,
// staggered so the opens ramp up linearly over RAMP_S seconds, sends nothing but a ping every
// PING_S seconds (the heartbeat wsstorm's idle.toml has), and closes it at the same moment as
// every other VU (RAMP_S + HOLD_S after the scenario started).
//
// Environment (set by run.sh): TARGET (ws://127.0.0.1:PORT/), VUS (default 5000), RAMP_S
// (default 5), HOLD_S (default 15), SUMMARY (path of the JSON summary).
import { WebSocket } from 'k6/experimental/websockets';
import { countErrors, handleSummary } from './common.js';
import exec from 'k6/execution';
import { sleep } from 'k6';
import { Counter } from 'k6/metrics';

const TARGET = __ENV.TARGET || 'ws://127.0.0.1:9001/';
const VUS = Number(__ENV.VUS || 10000);
const RAMP_MS = Number(__ENV.RAMP_S || 5) * 1000;
const HOLD_MS = Number(__ENV.HOLD_S || 15) * 1000;
const PING_MS = Number(__ENV.PING_S || 10) * 1000;

const opened = new Counter('opened');

export const options = {
  scenarios: {
    idle: {
      executor: 'per-vu-iterations',
      vus: VUS,
      iterations: 1, // one iteration = one idle connection
      maxDuration: `${Math.ceil((RAMP_MS + HOLD_MS) / 1000) + 20}s`,
    },
  },
};

export default function () {
  const start = exec.scenario.startTime;
  const openAt = start + ((__VU - 1) * RAMP_MS) / VUS;
  const closeAt = start + RAMP_MS + HOLD_MS;
  const wait = openAt - Date.now();
  if (wait > 0) {
    sleep(wait / 1000);
  }
  const ws = new WebSocket(TARGET);
  let stopping = false;
  ws.onopen = () => {
    opened.add(1);
    const heartbeat = setInterval(() => ws.ping(), PING_MS);
    setTimeout(() => {
      stopping = true;
      clearInterval(heartbeat);
      ws.close();
    }, Math.max(0, closeAt - Date.now()));
  };
  countErrors(ws, () => stopping);
}

export { handleSummary };
