"""A real MQTT broker on loopback for tests: now :mod:`fer_utils.video.broker`, shared with notebook 07."""

from fer_utils.video.broker import Subscriber, free_port, running_broker  # noqa: F401
