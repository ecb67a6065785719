"""Fake of the AWS IoT Greengrass Core SDK for Python (``greengrasssdk``), for tests off the device.

Follows aws-greengrass-core-sdk-python: ``client('iot-data')`` (other types raise) returns a
client whose ``publish(topic=..., payload=b'', queueFullPolicy='')`` takes keyword arguments only,
raises ``ValueError`` for a missing topic or an unknown policy, and returns ``None``. Messages are
recorded in :data:`published` for tests to assert on; ``GREENGRASSSDK_FAKE_ECHO=1`` also prints them.
"""

from __future__ import annotations

import os
import threading
from typing import NamedTuple

QUEUE_FULL_POLICIES = ("", "BestEffort", "AllOrException")


class PublishedMessage(NamedTuple):
    """One ``publish`` call as the router would have received it."""

    topic: str
    payload: bytes
    queue_full_policy: str


#: Every message published through any fake client, in order (cleared by :func:`reset`).
published: list[PublishedMessage] = []
_lock = threading.Lock()


def reset() -> None:
    """Forget every recorded message (fake-only helper; the real SDK has no such function)."""
    with _lock:
        published.clear()


def _payload_bytes(payload) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if hasattr(payload, "read") and hasattr(payload, "seek"):
        return payload.read()
    raise TypeError(
        f"payload must be bytes, str or a seekable file-like object, got {type(payload).__name__}"
    )


class IoTDataClient:
    """The ``'iot-data'`` client: ``publish`` only (the shadow calls are not faked)."""

    def publish(self, **kwargs) -> None:
        if "topic" not in kwargs:
            raise ValueError('Parameter "topic" is a required parameter but was not provided.')
        policy = kwargs.get("queueFullPolicy", "")
        if policy not in QUEUE_FULL_POLICIES:
            raise ValueError(f"Invalid value for queueFullPolicy: {policy}")
        message = PublishedMessage(str(kwargs["topic"]), _payload_bytes(kwargs.get("payload", b"")), policy)
        with _lock:
            published.append(message)
        if os.environ.get("GREENGRASSSDK_FAKE_ECHO") == "1":
            print(f"{message.topic} {message.payload.decode('utf-8', 'replace')}", flush=True)


def client(client_type: str, *args, **kwargs) -> IoTDataClient:
    """``greengrasssdk.client('iot-data')``; other client types are not faked and raise, like unknown ones."""
    if client_type == "iot-data":
        return IoTDataClient(*args, **kwargs)
    raise Exception(f"Client type {client_type!r} is not recognized.")
