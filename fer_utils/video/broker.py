"""A real MQTT broker on loopback, and a subscriber that collects messages: for tests and demonstrations.

``python -m fer_utils video --mqtt-host`` publishes to any MQTT broker; to show (and test) that the
messages really cross the wire, this module starts one on ``127.0.0.1``: Debian's ``mosquitto`` if
it is on the PATH, else ``amqtt`` (pure Python, from PyPI, in the ``dev`` extras). The broker runs as
a child process on a free port and is stopped when the ``with`` block ends, whatever happens inside.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt

LOOPBACK = "127.0.0.1"


class BrokerStartError(RuntimeError):
    """No broker is installed, or the one started exited or never listened; the message says which."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def broker_available() -> bool:
    """Whether :func:`running_broker` can start one: ``mosquitto`` on the PATH or ``amqtt`` importable."""
    return shutil.which("mosquitto") is not None or importlib.util.find_spec("amqtt") is not None


def broker_command(port: int, folder: Path) -> list[str]:
    """The command line (and, in ``folder``, the configuration) of an anonymous broker on ``port``."""
    folder.mkdir(parents=True, exist_ok=True)
    mosquitto = shutil.which("mosquitto")
    if mosquitto:
        config = folder / "mosquitto.conf"
        config.write_text(f"listener {port} {LOOPBACK}\nallow_anonymous true\npersistence false\n")
        return [mosquitto, "-c", str(config)]
    if importlib.util.find_spec("amqtt") is None:
        raise BrokerStartError(
            "no MQTT broker: install mosquitto, or amqtt (pip install 'amqtt>=0.12.1,<0.13')"
        )
    config = folder / "amqtt.yaml"
    config.write_text(
        f"listeners:\n  default:\n    type: tcp\n    bind: {LOOPBACK}:{port}\n"
        "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n"
    )
    return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(config)]


def _wait_for_port(port: int, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerStartError(
                f"MQTT broker exited with code {process.returncode}: {process.stderr.read()!r}"
            )
        try:
            socket.create_connection((LOOPBACK, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise BrokerStartError(f"MQTT broker did not listen on {LOOPBACK}:{port} within {timeout_s:g} s")


@contextmanager
def running_broker(folder: str | os.PathLike[str], timeout_s: float = 15.0) -> Iterator[int]:
    """Start a broker on a free loopback port (configuration files in ``folder``), yield the port, stop it."""
    port = free_port()
    process = subprocess.Popen(
        broker_command(port, Path(folder)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_for_port(port, process, timeout_s)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()


class Subscriber:
    """A paho client that collects the JSON messages of one topic (connected once SUBACK arrives)."""

    def __init__(self, port: int, topic: str, host: str = LOOPBACK, timeout_s: float = 10.0) -> None:
        self.messages: list[dict] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda client, *_: client.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = lambda _client, _userdata, message: self.messages.append(
            json.loads(message.payload)
        )
        self.client.connect(host, port)
        self.client.loop_start()
        if not self.subscribed.wait(timeout_s):
            self.close()
            raise TimeoutError(f"no SUBACK for topic {topic!r} from {host}:{port} within {timeout_s:g} s")

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[dict]:
        """The messages so far, once ``count`` have arrived or ``timeout_s`` has passed."""
        deadline = time.monotonic() + timeout_s
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
