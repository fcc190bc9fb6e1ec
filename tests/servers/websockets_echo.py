"""An echo server on the Python `websockets` library, for wsstorm's integration tests: a
server no one here wrote. Listens on 127.0.0.1 (port 0: any free port), prints
`{"port": N}` on one line when it listens, echoes every message, and prints its counts
`{"connections": C, "messages": M, "message_bytes": B, "compressed": K}` as one JSON line when
stdin closes (the test's way of stopping it), then exits. `compressed` counts the connections
that negotiated permessage-deflate.

usage: websockets_echo.py [--cert PEM --key PEM] [--no-compression]
"""

import asyncio
import json
import ssl
import sys

from websockets.asyncio.server import serve

counts = {"connections": 0, "messages": 0, "message_bytes": 0, "compressed": 0}


async def echo(ws):
    counts["connections"] += 1
    # The extension this connection negotiated (permessage-deflate, by default).
    if any(type(e).__name__ == "PerMessageDeflate" for e in ws.protocol.extensions):
        counts["compressed"] += 1
    async for message in ws:
        counts["messages"] += 1
        counts["message_bytes"] += len(message.encode() if isinstance(message, str) else message)
        await ws.send(message)


async def main():
    args = sys.argv[1:]
    tls = None
    if "--cert" in args:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args[args.index("--cert") + 1], args[args.index("--key") + 1])
    compression = None if "--no-compression" in args else "deflate"
    async with serve(echo, "127.0.0.1", 0, ssl=tls, compression=compression) as server:
        port = server.sockets[0].getsockname()[1]
        print(json.dumps({"port": port}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
    print(json.dumps(counts), flush=True)


asyncio.run(main())
