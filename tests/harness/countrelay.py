"""A TCP relay that counts connections, for "how many times did registryfs try?" tests.

    relay = CountRelay("127.0.0.1:5000").start()
    relay.url          -> "http://127.0.0.1:PORT" (mount this instead of the registry)
    relay.connections  -> connections accepted so far (each is one attempt of the client;
                          keep-alive reuse is one connection for several requests)
    relay.stop()       closes every connection and joins the threads

Bytes are forwarded unchanged in both directions; when the upstream refuses, the client's
connection is closed at once (what a stopped registry looks like through a proxy). A stopped
(SIGSTOPped) upstream still accepts connections in its kernel backlog, so the relay then
forwards a request that is never answered: a stalled registry.
"""

import socket
import threading

from .registry import free_port


class CountRelay:
    def __init__(self, upstream, port=None):
        host, _, port_s = upstream.split("://", 1)[-1].rstrip("/").rpartition(":")
        self.upstream = (host, int(port_s))
        self.port = port or free_port()
        self.connections = 0
        self._lock = threading.Lock()
        self._socks = []
        self._threads = []
        self._listener = None
        self._stopping = False

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "http://" + self.host

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    def count(self):
        with self._lock:
            return self.connections

    def start(self):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(64)
        self._spawn(self._accept_loop)
        return self

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        with self._lock:
            self._threads.append(t)
        t.start()

    def _track(self, s):
        with self._lock:
            if self._stopping:
                s.close()
                return False
            self._socks.append(s)
            return True

    def _accept_loop(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            if not self._track(client):
                return
            self._spawn(self._serve, client)

    def _serve(self, client):
        try:
            up = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        up.settimeout(None)
        for s in (client, up):   # forward each chunk at once, as the registry sent it
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self._track(up):
            client.close()
            return
        self._spawn(self._pump, up, client)
        self._pump(client, up)

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        with self._lock:
            self._stopping = True
            socks, self._socks = self._socks, []
            threads = list(self._threads)
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self._listener.close()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in threads:
            t.join(timeout=10)
