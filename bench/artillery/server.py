"""The Socket.IO server of bench/artillery/run.sh: python-socketio's AsyncServer on aiohttp (not
ours), the same library and version the integration tests use (tests/requirements.txt).

Namespace /chat; the event `chat` is acknowledged with its own arguments (`42/chat,N["chat",
{...}]` -> `43/chat,N[{...}]`). Nothing else: no rooms, no broadcasts. The Engine.IO heartbeat
runs every --ping-interval seconds (25, python-socketio's and socket.io's default), with a
--ping-timeout (20) to answer it.

It counts what it did itself, so each tool's own figures can be checked against it:
connects and disconnects on /chat (by reason), the acks it returned, the WebSocket upgrades
that offered permessage-deflate (the bench wants none), and the sessions open right now.
GET /counts on the same port returns them as JSON (the bench reads them before and after each
run and takes the difference). Prints {"port": N} once listening; on SIGTERM or SIGINT, or
when stdin closes if --exit-on-eof is given, prints the counts and exits.
"""

import argparse
import asyncio
import json
import signal
import sys

import socketio
from aiohttp import web

ap = argparse.ArgumentParser()
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--ping-interval", type=float, default=25.0)
ap.add_argument("--ping-timeout", type=float, default=20.0)
ap.add_argument("--exit-on-eof", action="store_true")
args = ap.parse_args()

counts = {
    "connects": 0,
    "disconnects": {},
    "acks": 0,
    "upgrades": 0,
    "deflate_offered": 0,
    "open": 0,
}

sio = socketio.AsyncServer(
    async_mode="aiohttp",
    ping_interval=args.ping_interval,
    ping_timeout=args.ping_timeout,
    # The default would log every connect at INFO; keep the server's own work to the protocol.
    logger=False,
    engineio_logger=False,
)


@sio.on("connect", namespace="/chat")
async def connect(sid, environ, auth=None):
    counts["connects"] += 1
    counts["open"] += 1


@sio.on("disconnect", namespace="/chat")
async def disconnect(sid, reason=None):
    counts["open"] -= 1
    key = str(reason)
    counts["disconnects"][key] = counts["disconnects"].get(key, 0) + 1


@sio.on("chat", namespace="/chat")
async def chat(sid, *data):
    counts["acks"] += 1
    return data  # a tuple: the ack carries the event's arguments


@web.middleware
async def count_upgrades(request, handler):
    if request.headers.get("Upgrade", "").lower() == "websocket":
        counts["upgrades"] += 1
        if "permessage-deflate" in request.headers.get("Sec-WebSocket-Extensions", ""):
            counts["deflate_offered"] += 1
    return await handler(request)


async def get_counts(_request):
    return web.json_response(counts)


async def main():
    app = web.Application(middlewares=[count_upgrades])
    app.router.add_get("/counts", get_counts)
    sio.attach(app)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=4096)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_on_eof:
        async def eof():
            await loop.run_in_executor(None, sys.stdin.read)
            stop.set()
        asyncio.ensure_future(eof())
    await stop.wait()
    print(json.dumps(counts), flush=True)
    await runner.cleanup()


asyncio.run(main())
