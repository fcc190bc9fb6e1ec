// An echo server on the npm `ws` package (not ours) with permessage-deflate, for the
// integration tests. It prints {"port":N} once listening; when its stdin closes, it prints what
// it counted and exits: connections, the Sec-WebSocket-Extensions answer of each upgrade,
// messages and their bytes (decompressed), and the bytes its sockets read and wrote (on the
// wire, compressed, with the upgrade and the frame headers).
//
// usage: ws_deflate.js [--client-max-window-bits N]   (the server limits the client's window)
const path = require('path');
const { WebSocketServer } = require(path.join(__dirname, '../node/node_modules/ws'));

const args = process.argv.slice(2);
const perMessageDeflate = { threshold: 0 };
const bits = args.indexOf('--client-max-window-bits');
if (bits >= 0) perMessageDeflate.clientMaxWindowBits = Number(args[bits + 1]);

const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate });
const counts = {
  connections: 0,
  extensions: [],
  messages: 0,
  message_bytes: 0,
  socket_read: 0,
  socket_written: 0,
};
const sockets = new Set();

wss.on('headers', (headers) => {
  const line = headers.find((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'));
  counts.extensions.push(line ? line.slice(line.indexOf(':') + 1).trim() : '');
});

wss.on('connection', (ws, req) => {
  counts.connections += 1;
  const socket = req.socket;
  sockets.add(socket);
  socket.on('close', () => {
    counts.socket_read += socket.bytesRead;
    counts.socket_written += socket.bytesWritten;
    sockets.delete(socket);
  });
  ws.on('message', (data, isBinary) => {
    counts.messages += 1;
    counts.message_bytes += data.length;
    ws.send(data, { binary: isBinary });
  });
});

wss.on('listening', () => {
  console.log(JSON.stringify({ port: wss.address().port }));
});
process.stdin.on('end', () => {
  for (const socket of sockets) {
    counts.socket_read += socket.bytesRead;
    counts.socket_written += socket.bytesWritten;
  }
  console.log(JSON.stringify(counts));
  process.exit(0);
});
process.stdin.resume();
