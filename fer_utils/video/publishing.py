"""Publishing each frame's emotions over MQTT (paho-mqtt 2.x), for dashboards and IoT consumers.

One JSON message per frame at QoS 1, with the same records as the timeline file. Connection
problems at start-up raise, before any frame is processed; failures while running are counted,
never raised, so a dropped network does not stop the analysis. paho's network thread sends and
reconnects in the background. Imports only paho and the standard library (reusable on DeepLens).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

try:
    import paho.mqtt.client as mqtt
except ImportError:  # the [mqtt] extra is not installed; only publishing needs it
    mqtt = None

DEFAULT_PORT = 1883
DEFAULT_TOPIC = "fer/emotions"


class MqttConnectionError(ConnectionError):
    """The broker could not be reached or refused the connection; the message names host:port."""


@dataclass
class PublishStats:
    attempted: int = 0
    failed: int = 0

    def summary(self) -> str:
        return f"{self.attempted - self.failed} of {self.attempted} MQTT message(s) published, {self.failed} failed"


def frame_message(frame_index: int, time_s: float, faces: Sequence[dict], source: str | None = None) -> str:
    """The JSON text of one frame: its index, time, and one dict per face (empty list: no face)."""
    message = {"frame": int(frame_index), "time_s": round(float(time_s), 4), "faces": list(faces)}
    if source is not None:
        message["source"] = source
    return json.dumps(message, separators=(",", ":"))


class MqttPublisher:
    """Publishes frame messages to ``topic`` on an MQTT broker; use as a context manager.

    ``connect_timeout_s`` bounds how long start-up waits for the broker's CONNACK;
    ``max_queued_messages`` bounds what is kept for resending while the broker is unreachable.
    """

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        topic: str = DEFAULT_TOPIC,
        qos: int = 1,
        client_id: str = "",
        connect_timeout_s: float = 5.0,
        keepalive_s: int = 30,
        max_queued_messages: int = 1000,
    ) -> None:
        if not topic or any(char in topic for char in "#+"):
            raise ValueError(f"MQTT topic must be a non-empty name without wildcards, got {topic!r}")
        if mqtt is None:
            raise MqttConnectionError("Publishing over MQTT needs paho-mqtt: pip install 'fer-utils[mqtt]'")
        self.host, self.port, self.topic, self.qos = host, int(port), topic, qos
        self.stats = PublishStats()
        self._connect_timeout_s = connect_timeout_s
        self._keepalive_s = keepalive_s
        self._connected = threading.Event()
        self._refusal: str | None = None
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.connect_timeout = connect_timeout_s  # the TCP connect, before the CONNACK wait
        # Bounded memory while the broker is away: beyond this, publish_frame counts failures.
        self._client.max_queued_messages_set(max_queued_messages)
        self._started = False
        self._pending: deque[mqtt.MQTTMessageInfo] = deque()

    @property
    def where(self) -> str:
        return f"MQTT broker {self.host}:{self.port}"

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._refusal = str(reason_code)
        else:
            self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()

    def connect(self) -> MqttPublisher:
        """Connect and start paho's network thread; :class:`MqttConnectionError` if that fails."""
        try:
            self._client.connect(self.host, self.port, keepalive=self._keepalive_s)
        except (OSError, ValueError) as error:
            raise MqttConnectionError(f"cannot connect to {self.where}: {error}") from error
        self._client.loop_start()
        self._started = True
        if not self._connected.wait(self._connect_timeout_s) or self._refusal:
            reason = self._refusal or f"no CONNACK within {self._connect_timeout_s:g} s"
            self.close()
            raise MqttConnectionError(f"{self.where} did not accept the connection: {reason}")
        return self

    def connect_in_background(self) -> MqttPublisher:
        """Start paho's network thread, which connects (and reconnects) whenever the broker is there."""
        self._client.connect_async(self.host, self.port, keepalive=self._keepalive_s)
        self._client.loop_start()
        self._started = True
        return self

    def publish_frame(
        self, frame_index: int, time_s: float, faces: Sequence[dict], source: str | None = None
    ) -> bool:
        """Queue one frame's message; False (and counted) when it cannot be sent. Never raises."""
        self.stats.attempted += 1
        try:
            info = self._client.publish(
                self.topic, frame_message(frame_index, time_s, faces, source), qos=self.qos
            )
        except (
            Exception
        ):  # paho raises for oversized payloads, closed sockets, ...: count, never stop the loop
            self.stats.failed += 1
            return False
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            # Not connected, queue full, ...: counted as failed even if paho later resends a
            # queued copy after reconnecting, so the count never flatters the link.
            self.stats.failed += 1
            return False
        self._pending.append(info)
        while self._pending and self._pending[0].is_published():
            self._pending.popleft()
        return True

    def close(self, drain_timeout_s: float = 2.0) -> None:
        """Wait briefly for queued QoS 1 messages, then disconnect and stop the network thread."""
        if not self._started:
            return
        self._wait_for_outgoing(drain_timeout_s if self._connected.is_set() else 0.0)
        self._client.disconnect()
        self._client.loop_stop()
        self._started = False

    def _wait_for_outgoing(self, timeout_s: float) -> None:
        """Wait for the broker's acknowledgements; messages still unacknowledged count as failed."""
        deadline = time.monotonic() + timeout_s
        while self._pending:
            info = self._pending.popleft()
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError):  # the message was dropped (e.g. the connection died)
                pass
            if not info.is_published():
                self.stats.failed += 1

    def __enter__(self) -> MqttPublisher:
        return self.connect()

    def __exit__(self, *exc_info) -> None:
        self.close()
