// A GraphQL over WebSocket server (the graphql-transport-ws subprotocol) built on the npm
// `graphql-ws` server with `ws` and `graphql` (none of them ours), for the integration tests.
// Schema: query { hello }, subscription { countdown(from: Int!): Int } (from..1, every 5 ms),
// subscription { boom }: an error. connection_init must carry payload.token, else the server
// closes with 4403. Prints {"port":N} once listening; when stdin closes, prints its counts.
const path = require('path');
const req = require('module').createRequire(path.join(__dirname, '../node/package.json'));
const { WebSocketServer } = req('ws');
const { useServer } = req('graphql-ws/use/ws');
const { buildSchema } = req('graphql');

const schema = buildSchema(`
  type Query { hello: String }
  type Subscription { countdown(from: Int!): Int, boom: Int }
`);
const counts = { connections: 0, acks: 0, refused: 0, subscribes: 0, nexts: 0, completes: 0, errors: 0 };

const roots = {
  hello: () => 'world',
  countdown: async function* ({ from }) {
    for (let i = from; i > 0; i--) {
      await new Promise((r) => setTimeout(r, 5));
      counts.nexts += 1;
      yield { countdown: i };
    }
  },
  boom: () => {
    throw new Error('boom');
  },
};

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
useServer(
  {
    schema,
    roots: { query: { hello: roots.hello }, subscription: { countdown: roots.countdown, boom: roots.boom } },
    onConnect: (ctx) => {
      counts.connections += 1;
      if (!ctx.connectionParams || !ctx.connectionParams.token) {
        counts.refused += 1;
        return false; // 4403 Forbidden
      }
      counts.acks += 1;
      return true;
    },
    onSubscribe: () => {
      counts.subscribes += 1;
    },
    onError: () => {
      counts.errors += 1;
    },
    onComplete: () => {
      counts.completes += 1;
    },
  },
  wss,
);
wss.on('listening', () => console.log(JSON.stringify({ port: wss.address().port })));
process.stdin.on('end', () => {
  console.log(JSON.stringify(counts));
  process.exit(0);
});
process.stdin.resume();
