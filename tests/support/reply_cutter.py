"""A TCP relay between workers and redis-server that drops the reply of chosen scripts.

Why: "the connection died right after the claim script ran" must happen every time the test says,
not by luck. The relay forwards a request carrying a chosen script's SHA, waits until the server
answers (the script has run), then closes both sides without passing the answer on: the client sees
a lost reply and resends. Everything else is relayed untouched.
"""

from __future__ import annotations

import hashlib
import socket
import threading

from engine.fdwait import readable
from engine.store.redis.lua import SCRIPTS


def script_sha(name: str) -> bytes:
    return hashlib.sha1(SCRIPTS[name].encode()).hexdigest().encode()


class ReplyCutter:
    def __init__(self, target_port: int, cuts: dict[str, int]) -> None:
        self.target = ("127.0.0.1", target_port)
        self._budget = {script_sha(name): (name, n) for name, n in cuts.items()}
        self.cut: dict[str, int] = dict.fromkeys(cuts, 0)
        self._lock = threading.Lock()
        self._closed = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._accept_loop, name="cutter-accept", daemon=True)
        self._accept.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            t = threading.Thread(target=self._relay, args=(client,), daemon=True)
            t.start()
            self._threads.append(t)

    def _arm(self, data: bytes) -> bool:
        with self._lock:
            for sha, (name, left) in self._budget.items():
                if left > 0 and sha in data:
                    self._budget[sha] = (name, left - 1)
                    self.cut[name] += 1
                    return True
        return False

    def _relay(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        armed = False
        try:
            while not self._closed:
                ready = readable([client.fileno(), server.fileno()], 0.2)  # poll: a test process may hold fds > 1024
                if client.fileno() in ready:
                    data = client.recv(65536)
                    if not data:
                        return
                    armed = armed or self._arm(data)
                    server.sendall(data)
                if server.fileno() in ready:
                    data = server.recv(65536)
                    if not data or armed:
                        return  # armed: the script ran; its answer is dropped with the connection
                    client.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            server.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for t in self._threads:
            t.join(timeout=5)
