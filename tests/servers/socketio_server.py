"""A Socket.IO server built on python-socketio (AsyncServer on aiohttp), not ours, for the
integration tests. Namespace /chat; a client joins its own room (`join`, acknowledged), sends
`chat message` (acknowledged with {"echo": data}) and `ping me` (acknowledged after a `news`
event to the client's room, so the event leaves before the ack). The Engine.IO heartbeat runs
every 200 ms with a 300 ms timeout: a client that does not answer the pings is dropped.

Prints {"port": N} once listening; when its stdin closes, prints what it counted and exits.
"""

import asyncio
import json
import sys

import socketio
from aiohttp import web

counts = {
    "connects": 0,
    "joins": 0,
    "chats": 0,
    "news": 0,
    "disconnects": {},
    "auth": [],
}

sio = socketio.AsyncServer(async_mode="aiohttp", ping_interval=0.2, ping_timeout=0.3)
rooms = {}


@sio.on("connect", namespace="/chat")
async def connect(sid, environ, auth):
    counts["connects"] += 1
    if len(counts["auth"]) < 5:
        counts["auth"].append(auth)


@sio.on("disconnect", namespace="/chat")
async def disconnect(sid, reason=None):
    key = str(reason)
    counts["disconnects"][key] = counts["disconnects"].get(key, 0) + 1


@sio.on("join", namespace="/chat")
async def join(sid, data):
    counts["joins"] += 1
    room = data["room"]
    await sio.enter_room(sid, room, namespace="/chat")
    rooms[sid] = room
    return {"joined": room}


@sio.on("chat message", namespace="/chat")
async def chat(sid, data):
    counts["chats"] += 1
    return {"echo": data}


@sio.on("ping me", namespace="/chat")
async def ping_me(sid, *args):
    counts["news"] += 1
    await sio.emit("news", {"n": counts["news"]}, room=rooms.get(sid, sid), namespace="/chat")
    return "sent"


async def main():
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    print(json.dumps(counts), flush=True)
    await runner.cleanup()


asyncio.run(main())
