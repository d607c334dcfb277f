"""A slow-loris server on raw sockets, standard library only: it accepts TCP connections and never serves them.

Usage: slowloris.py [--mode silent|trickle] [--interval SECONDS]

Listens on 127.0.0.1 on an ephemeral port and prints that port as stdout's first line. Every connection is
accepted and its request read and thrown away; then, with ``--mode silent`` (the default), nothing is ever
sent back, and with ``--mode trickle`` an HTTP status line and an endless header are sent one byte every
``--interval`` seconds (0.1 by default): always some progress, never a complete answer, so a per-read timeout
never fires. The connections are held open until the client closes them or the process is killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import sys


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["silent", "trickle"], default="silent")
    parser.add_argument("--interval", type=float, default=0.1)
    args = parser.parse_args()

    async def drain(reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while await reader.read(65536):
                pass

    async def trickle(writer: asyncio.StreamWriter) -> None:
        head = b"HTTP/1.1 200 OK\r\nX-Slow: "
        with contextlib.suppress(OSError):
            for byte in itertools.chain(head, itertools.repeat(ord("z"))):
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(args.interval)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks = [asyncio.create_task(drain(reader))]
        if args.mode == "trickle":
            tasks.append(asyncio.create_task(trickle(writer)))
        try:
            # Until the client goes away: its close ends the drain, or breaks the trickle.
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    sys.stdout.write(f"{server.sockets[0].getsockname()[1]}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
