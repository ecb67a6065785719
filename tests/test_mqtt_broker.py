"""The loopback MQTT broker shared by the publishing tests and notebook 07 (the happy path runs in test_publishing)."""

from __future__ import annotations

import importlib.util
import shutil
import sys

import pytest

from fer_utils.video import broker


def test_amqtt_is_used_when_mosquitto_is_absent(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    command = broker.broker_command(4321, tmp_path / "broker")
    assert command[:3] == [sys.executable, "-m", "amqtt.scripts.broker_script"]
    assert "bind: 127.0.0.1:4321" in (tmp_path / "broker" / "amqtt.yaml").read_text()


def test_no_broker_installed_is_a_clear_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert not broker.broker_available()
    with pytest.raises(broker.BrokerStartError, match="install mosquitto, or amqtt"):
        broker.broker_command(4321, tmp_path)


def test_a_broker_that_exits_at_once_is_reported(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(
        broker, "broker_command", lambda port, folder: [sys.executable, "-c", "raise SystemExit(3)"]
    )
    with pytest.raises(broker.BrokerStartError, match="exited with code 3"):
        with broker.running_broker(tmp_path):
            pass
