"""A TCP proxy on 127.0.0.1 that holds every request `delay` seconds before passing it on: a tracking
server that answers every request late (the far end of a slow link). For benchmarks and tests.

    with DelayProxy(("127.0.0.1", server_port), delay=2.0) as proxy:
        proxy.uri   # http://127.0.0.1:<port>
"""

from __future__ import annotations

import asyncio
import threading

from . import free_port


class DelayProxy:
    def __init__(self, upstream: tuple[str, int], delay: float = 2.0):
        self.upstream, self.delay = upstream, delay
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def _pipe(self, reader, writer, delay: float) -> None:
        try:
            while data := await reader.read(65536):
                if delay:
                    await asyncio.sleep(delay)  # a request's bytes arrive together: one delay per request
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_r, client_w) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(self._pipe(client_r, server_w, self.delay), self._pipe(server_r, client_w, 0))

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()
        server.close()

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
