// Processor of closed-loop.yml: the loop's whileTrue. All VUs stop at the same moment,
// DURATION_S seconds (env, default 15) after the first ack of this worker; each finishes the
// ack in flight first (whileTrue is asked after every iteration), so emits == acks.
'use strict';

const DURATION_MS = Number(process.env.DURATION_S || 15) * 1000;
let deadline = 0;

function beforeDeadline(context, next) {
  const now = Date.now();
  if (!deadline) {
    deadline = now + DURATION_MS;
  }
  return next(now < deadline);
}

module.exports = { beforeDeadline };
