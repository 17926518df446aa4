"""A TCP proxy on 127.0.0.1 that tests put between liuhen and PostgreSQL to cut and restore the connection.

It reads the PostgreSQL wire protocol only as far as finding statement text in what the client sends,
so connections through it must not use TLS (``sslmode=disable``).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

# What the server sends after it has committed: CommandComplete with the tag COMMIT, then ReadyForQuery.
_COMMIT_DONE = b"COMMIT\x00"
_READY_FOR_QUERY = b"Z\x00\x00\x00\x05"
_COMMIT_QUERY = b"COMMIT\x00"


@dataclass
class _Link:
    """One client connection and the server connection the proxy opened for it."""

    client: socket.socket
    server: socket.socket
    saw_marker: bool = False
    swallowing: bool = False
    swallowed: bytearray = field(default_factory=bytearray)


class TcpProxy:
    """Forward 127.0.0.1:``port`` to ``target``; ``cut`` drops every connection until ``restore``.

    While cut, new connections are accepted and closed at once, as a database that went away does.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port: int = self.listener.getsockname()[1]
        self.tripped = threading.Event()
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._cut = False
        self._closed = False
        self._cut_marker: bytes | None = None
        self._commit_marker: bytes | None = None
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> TcpProxy:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        self.cut()
        # Closing a listening socket does not wake a thread blocked in accept() on Linux; shutting it down does.
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        self._acceptor.join(timeout=10)

    def cut(self) -> None:
        """Close every connection now and refuse new ones until ``restore``."""
        with self._lock:
            self._cut = True
            links, self._links = self._links, []
        for link in links:
            _close(link)

    def restore(self) -> None:
        with self._lock:
            self._cut = False
            self._cut_marker = self._commit_marker = None
        self.tripped.clear()

    def cut_when_sent(self, marker: bytes) -> None:
        """Cut, without forwarding it, as soon as a client sends data that contains ``marker``."""
        with self._lock:
            self._cut_marker = marker

    def cut_after_commit(self, marker: bytes) -> None:
        """Cut once a connection that sent ``marker`` has had its next COMMIT confirmed by the server.

        The server commits, and the client never sees the confirmation: the response is lost after COMMIT.
        """
        with self._lock:
            self._commit_marker = marker

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _address = self.listener.accept()
            except OSError:
                return
            if self._cut:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            link = _Link(client, server)
            with self._lock:
                self._links.append(link)
            threading.Thread(target=self._pump_to_server, args=(link,), daemon=True).start()
            threading.Thread(target=self._pump_to_client, args=(link,), daemon=True).start()

    def _pump_to_server(self, link: _Link) -> None:
        # NOTE: markers are looked for in each received chunk, so one split across two chunks is missed.
        # The driver sends each statement in one write, and on 127.0.0.1 it arrives whole.
        while True:
            try:
                data = link.client.recv(65536)
            except OSError:
                data = b""
            if not data:
                _close(link)
                return
            if self._cut_marker is not None and self._cut_marker in data:
                self._trip()
                return
            if self._commit_marker is not None and self._commit_marker in data:
                link.saw_marker = True
            if link.saw_marker and _COMMIT_QUERY in data:
                link.swallowing = True
            try:
                link.server.sendall(data)
            except OSError:
                _close(link)
                return

    def _pump_to_client(self, link: _Link) -> None:
        while True:
            try:
                data = link.server.recv(65536)
            except OSError:
                data = b""
            if not data:
                _close(link)
                return
            if link.swallowing:
                link.swallowed += data
                done = link.swallowed.find(_COMMIT_DONE)
                if done >= 0 and _READY_FOR_QUERY in link.swallowed[done:]:
                    self._trip()
                    return
                continue
            try:
                link.client.sendall(data)
            except OSError:
                _close(link)
                return

    def _trip(self) -> None:
        self.tripped.set()
        self.cut()


def _close(link: _Link) -> None:
    for sock in (link.client, link.server):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
