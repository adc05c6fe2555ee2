"""A TCP proxy the tests own, to cut a client's connection to RabbitMQ without touching the broker
that other runs share."""

from __future__ import annotations

import socket
import threading
from contextlib import suppress


class TcpProxy:
    """To one target, or to the first of several that answers (a load balancer in front of a
    cluster, as a Kubernetes Service is: a client whose node died reconnects to another)."""

    def __init__(self, target_host: str, *target_ports: int) -> None:
        self.targets = [(target_host, port) for port in target_ports]
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._open: set[socket.socket] = set()
        self._silenced: set[socket.socket] = set()  # nothing they send is passed on, nothing closes
        self._lock = threading.Lock()
        self._refusing = False
        self._silent = False
        self._closed = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until `restore()`."""
        with self._lock:
            self._refusing = True
            for sock in list(self._open):  # the silenced ones too: they are open
                self._kill(sock)
            self._open.clear()
            self._silenced.clear()

    def silence(self) -> None:
        """A link that goes quiet without a word (a dropped route, a NAT entry gone): from now on the
        open connections and new ones carry nothing and are never closed, and stay so after
        `restore()`, which only lets new connections through again. Only a heartbeat or a timeout
        tells a client."""
        with self._lock:
            self._silent = True
            self._silenced.update(self._open)

    def restore(self) -> None:
        with self._lock:
            self._refusing = False
            self._silent = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        with suppress(OSError):
            self._listener.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = self._connect()
            if upstream is None:
                self._kill(client)
                continue
            with self._lock:  # checked once connected: a cut meanwhile must not let this one through
                if self._refusing:
                    self._kill(client)
                    self._kill(upstream)
                    continue
                self._open.update((client, upstream))
                if self._silent:
                    self._silenced.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _connect(self) -> socket.socket | None:
        for target in self.targets:
            try:
                upstream = socket.create_connection(target, timeout=5)
            except OSError:
                continue
            upstream.settimeout(None)
            return upstream
        return None

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if src not in self._silenced:
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                silent = src in self._silenced
                self._open.discard(src)
                self._silenced.discard(src)
                if not silent:
                    self._open.discard(dst)
            self._kill(src)
            if not silent:  # a silenced peer learns nothing: its own side stays open
                self._kill(dst)

    @staticmethod
    def _kill(sock: socket.socket) -> None:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with suppress(OSError):
            sock.close()


class Proxies:
    """One proxy per kind of process (api, worker, relay, command), to cut the link of one kind or
    of all."""

    def __init__(self, target_host: str, *target_ports: int) -> None:
        self._host, self._ports = target_host, target_ports
        self._proxies: dict[str, TcpProxy] = {}
        self._lock = threading.Lock()

    def port(self, kind: str) -> int:
        with self._lock:
            if kind not in self._proxies:
                self._proxies[kind] = TcpProxy(self._host, *self._ports)
            return self._proxies[kind].port

    def _chosen(self, kind: str | None) -> list[TcpProxy]:
        with self._lock:
            return [p for k, p in self._proxies.items() if kind in (None, k)]

    def cut(self, kind: str | None = None) -> None:
        for proxy in self._chosen(kind):
            proxy.cut()

    def silence(self, kind: str | None = None) -> None:
        for proxy in self._chosen(kind):
            proxy.silence()

    def restore(self, kind: str | None = None) -> None:
        for proxy in self._chosen(kind):
            proxy.restore()

    def close(self) -> None:
        for proxy in self._chosen(None):
            proxy.close()
