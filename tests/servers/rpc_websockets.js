// A JSON-RPC 2.0 server built on the npm `rpc-websockets` package (not ours), for the
// integration tests. It prints {"port":N} once listening; when its stdin closes, it prints
// what it counted and exits.
//
// Methods: sum (params [a, b]), fail (throws: error -32000); any other: rpc-websockets'
// own -32601. Event "tick": emitted every 20 ms to the sockets subscribed with rpc.on.
const path = require('path');
const { Server } = require(path.join(__dirname, '../node/node_modules/rpc-websockets'));

const server = new Server({ port: 0, host: '127.0.0.1' });
const counts = { connections: 0, messages: 0, methods: {}, sums: 0, fails: 0, ticks: 0 };

server.register('sum', (params) => {
  counts.sums += 1;
  return params[0] + params[1];
});
server.register('fail', () => {
  counts.fails += 1;
  throw new Error('failed as asked');
});
server.event('tick');

server.wss.on('connection', (ws) => {
  counts.connections += 1;
  ws.on('message', (data) => {
    counts.messages += 1;
    try {
      const m = JSON.parse(data.toString());
      counts.methods[m.method] = (counts.methods[m.method] || 0) + 1;
    } catch (e) {
      counts.methods['(not json)'] = (counts.methods['(not json)'] || 0) + 1;
    }
  });
});

let n = 0;
setInterval(() => {
  // Counted as rpc-websockets sends it: to each subscribed socket still open.
  const ns = server.namespaces['/'];
  for (const id of ns.events.tick.sockets) {
    const socket = ns.clients.get(id);
    if (socket && socket.readyState === 1) counts.ticks += 1;
  }
  n += 1;
  server.emit('tick', { n });
}, 20);

server.on('listening', () => {
  console.log(JSON.stringify({ port: server.wss.address().port }));
});
process.stdin.on('end', () => {
  console.log(JSON.stringify(counts));
  process.exit(0);
});
process.stdin.resume();
