"""A userspace delay line: a TCP proxy on 127.0.0.1 that makes a loopback registry look
distant (this kernel has no netem).

    with DelayLine(reg.port, rtt_ms=40, mbit=100) as dl:
        dl.port, dl.host ("127.0.0.1:PORT"), dl.url ("http://127.0.0.1:PORT")
        ... point registryfs / skopeo / curl at dl.url or dl.host ...

Model, per connection and per direction (client -> upstream and upstream -> client, each on
its own):
  - rate: each direction of each connection is paced to `mbit` Mbit/s (a token bucket
    without burst: a chunk of n bytes leaves n/rate seconds after the previous one finished
    leaving, or when it was read, whichever is later). mbit=None/0: no rate cap.
  - delay: every chunk is delivered rtt/2 after it finished leaving. Chunks wait in a delay
    queue with their delivery time, so the delay does not cut throughput (a stream reaches
    the rate after one rtt/2, as on a long fat pipe).
  - connection setup: a new connection pays the TCP handshake, one rtt: the client's first
    bytes cannot leave before accept + rtt, so a request's answer starts about 2 rtt after
    connect, as on a real network.
  - bounded buffering: a direction stops reading its source while more than
    max(256 KiB, 2 x rate x rtt) bytes are queued for it (backpressure reaches the sender
    through the loopback socket). Reads are at most 64 KiB.
  - end of stream: a half-close (EOF) travels like data (after the queued bytes, rtt/2
    later); a reset or error on either side closes both.

It runs an asyncio event loop in a background thread; start() returns once it listens,
stop() closes the listener and every connection and joins the thread. Loopback only: the
upstream must be a 127.x.x.x address.

`stats()` gives (connections accepted, bytes upstream -> client, bytes client -> upstream).
"""

import asyncio
import collections
import ipaddress
import socket
import threading

READ_SIZE = 64 * 1024
MIN_QUEUE = 256 * 1024


def _parse_upstream(upstream, host):
    """(host, port) from a port number, "HOST:PORT" or "http://HOST:PORT[/...]"."""
    if isinstance(upstream, int):
        return host, upstream
    s = str(upstream).split("://", 1)[-1].split("/", 1)[0]
    if ":" in s:
        h, p = s.rsplit(":", 1)
        return h or host, int(p)
    return host, int(s)


def _check_loopback(host):
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError("DelayLine: upstream must be a 127.x.x.x address, not %r" % host)
    if ip.version != 4 or not ip.is_loopback:
        raise ValueError("DelayLine: upstream must be a 127.x.x.x address, not %r" % host)


class _Direction:
    """One direction of one connection: read src -> delay queue -> write dst."""

    def __init__(self, line, reader, writer, not_before):
        self.line = line
        self.reader = reader
        self.writer = writer
        self.queue = collections.deque()        # (deliver_at, bytes or None for EOF)
        self.queued = 0
        self.leave_end = not_before             # when the last queued byte finished leaving
        self.have_data = asyncio.Event()
        self.have_room = asyncio.Event()
        self.have_room.set()
        self.nbytes = 0

    async def pump_in(self):
        loop = asyncio.get_running_loop()
        line = self.line
        while True:
            while self.queued > line.queue_limit:
                self.have_room.clear()
                await self.have_room.wait()
            data = await self.reader.read(READ_SIZE)
            now = loop.time()
            start = max(now, self.leave_end)
            if data:
                self.leave_end = start + (len(data) / line.rate if line.rate else 0.0)
                self.queued += len(data)
            else:
                self.leave_end = start
            self.queue.append((self.leave_end + line.half_rtt, data or None))
            self.have_data.set()
            if not data:
                return

    async def pump_out(self):
        loop = asyncio.get_running_loop()
        while True:
            while not self.queue:
                self.have_data.clear()
                await self.have_data.wait()
            due, _ = self.queue[0]
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            # everything due by now goes out in one batch (timer lateness never accumulates:
            # delivery times come from the pacing clock, not from when we woke up)
            now = loop.time()
            sent = 0
            while self.queue and self.queue[0][0] <= now:
                _, data = self.queue.popleft()
                if data is None:
                    if sent:
                        await self.writer.drain()
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                    return
                self.writer.write(data)
                sent += len(data)
            if sent:
                await self.writer.drain()
                self.queued -= sent
                self.nbytes += sent
                self.have_room.set()


class DelayLine:
    def __init__(self, upstream_port, rtt_ms=40, mbit=100, host="127.0.0.1"):
        self.upstream_host, self.upstream_port = _parse_upstream(upstream_port, host)
        _check_loopback(self.upstream_host)
        _check_loopback(host)
        self.listen_host = host
        self.rtt = rtt_ms / 1000.0
        self.half_rtt = self.rtt / 2.0
        self.mbit = mbit
        self.rate = mbit * 1e6 / 8.0 if mbit else 0.0       # bytes/s per direction
        self.queue_limit = max(MIN_QUEUE, int(2 * self.rate * self.rtt)) if self.rate \
            else 4 * 1024 * 1024
        self.port = None
        self.connections = 0
        self.bytes_down = 0         # upstream -> client
        self.bytes_up = 0           # client -> upstream
        self._loop = None
        self._thread = None
        self._server = None
        self._tasks = set()
        self._writers = set()
        self._lock = threading.Lock()

    # -- addresses -----------------------------------------------------------------
    @property
    def host(self):
        return "%s:%d" % (self.listen_host, self.port)

    @property
    def url(self):
        return "http://" + self.host

    def __repr__(self):
        return "DelayLine(%s -> %s:%d, rtt %.0f ms, %s Mbit/s)" % (
            self.host if self.port else "-", self.upstream_host, self.upstream_port,
            self.rtt * 1000, self.mbit or "unlimited")

    def stats(self):
        with self._lock:
            return self.connections, self.bytes_down, self.bytes_up

    # -- lifecycle -----------------------------------------------------------------
    def start(self, timeout=10):
        if self._thread is not None:
            return self
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure = []

        def run():
            asyncio.set_event_loop(self._loop)
            try:
                self._server = self._loop.run_until_complete(asyncio.start_server(
                    self._handle, self.listen_host, 0, reuse_address=True,
                    limit=2 * READ_SIZE))
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as e:      # noqa: BLE001 -- reported by start()
                failure.append(e)
                ready.set()
                self._loop.close()
                return
            ready.set()
            try:
                self._loop.run_forever()
            finally:
                self._loop.run_until_complete(self._shutdown())
                self._loop.close()

        self._thread = threading.Thread(target=run, name="delayline", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or failure:
            self._thread.join(timeout)
            self._thread = None
            raise RuntimeError("DelayLine did not start: %s" % (failure or "timeout"))
        return self

    def stop(self, timeout=10):
        """Close the listener and every connection, stop the loop, join the thread."""
        t = self._thread
        if t is None:
            return
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        t.join(timeout)
        self._thread = None
        if t.is_alive():
            raise RuntimeError("DelayLine thread did not stop")

    async def _shutdown(self):
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        tasks = [t for t in self._tasks if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2)
            except (asyncio.TimeoutError, Exception):   # noqa: BLE001
                pass
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    # -- one connection --------------------------------------------------------------
    async def _handle(self, c_reader, c_writer):
        task = asyncio.current_task()
        self._tasks.add(task)
        self._writers.add(c_writer)
        loop = asyncio.get_running_loop()
        accepted = loop.time()
        with self._lock:
            self.connections += 1
        u_writer = None
        try:
            try:
                u_reader, u_writer = await asyncio.open_connection(
                    self.upstream_host, self.upstream_port, limit=2 * READ_SIZE)
            except OSError:
                return
            self._writers.add(u_writer)
            for w in (c_writer, u_writer):
                sock = w.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # the handshake: the client's first bytes leave one rtt after connect
            up = _Direction(self, c_reader, u_writer, accepted + self.rtt)
            down = _Direction(self, u_reader, c_writer, accepted)
            pumps = [asyncio.ensure_future(c) for c in
                     (up.pump_in(), up.pump_out(), down.pump_in(), down.pump_out())]
            try:
                pending = set(pumps)
                while pending:
                    done, pending = await asyncio.wait(pending,
                                                       return_when=asyncio.FIRST_COMPLETED)
                    # a clean EOF ends one pump; an error (reset, broken pipe) ends it all
                    if any(not p.cancelled() and p.exception() is not None for p in done):
                        break
            finally:
                for p in pumps:
                    p.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
                with self._lock:
                    self.bytes_up += up.nbytes
                    self.bytes_down += down.nbytes
        finally:
            for w in (c_writer, u_writer):
                if w is None:
                    continue
                self._writers.discard(w)
                try:
                    w.close()
                except Exception:       # noqa: BLE001
                    pass
            self._tasks.discard(task)
