// Shared by the k6 scripts: the error counter, the error handler and the JSON summary file.
import { Counter } from 'k6/metrics';

const errors = new Counter('ws_errors');

// Counts WebSocket errors, except those after the script itself began closing.
export function countErrors(ws, stopping) {
  ws.onerror = (e) => {
    if (!stopping()) {
      errors.add(1);
      console.error(`VU ${__VU}: ${e.error}`);
    }
  };
}

export function handleSummary(data) {
  const out = {};
  out[__ENV.SUMMARY || 'k6-summary.json'] = JSON.stringify(data, null, 1);
  return out;
}
