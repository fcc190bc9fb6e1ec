// Preloaded into Artillery (node --require) by run.sh: replaces the `posthog-node` client
// with one that sends nothing. Artillery 2.0.21 sends a "test run" event to PostHog on every
// run even with ARTILLERY_DISABLE_TELEMETRY set (lib/telemetry.js then only strips the
// properties), and waits for it to flush at exit; the bench keeps everything on 127.0.0.1.
'use strict';

const Module = require('module');

class PostHog {
  capture() {}
  async shutdownAsync() {}
  async shutdown() {}
}

const load = Module._load;
Module._load = function (request, parent, isMain) {
  if (request === 'posthog-node') {
    return { PostHog };
  }
  return load.apply(this, arguments);
};
