"""MQTT publishing against a real broker on loopback, started and stopped by the test itself.

Debian's ``mosquitto`` when it is installed, otherwise the pure-Python ``amqtt`` broker (a dev
dependency), so the round trip runs on CI machines that have only Python and pip.
"""

from __future__ import annotations

import json
import time

import pytest
from helpers.mqtt_broker import Subscriber, free_port, running_broker

from fer_utils import cli
from fer_utils.video.publishing import MqttConnectionError, MqttPublisher, frame_message


@pytest.fixture(scope="module")
def broker_port(tmp_path_factory: pytest.TempPathFactory):
    with running_broker(tmp_path_factory.mktemp("broker")) as port:
        yield port


def test_frames_arrive_at_a_subscriber_as_json(broker_port: int) -> None:
    subscriber = Subscriber(broker_port, "test/fer")
    try:
        face = {
            "face": 0,
            "box": [1, 2, 30, 30],
            "label": "Happy",
            "probabilities": {"Happy": 0.9, "Sad": 0.1},
        }
        with MqttPublisher("127.0.0.1", broker_port, topic="test/fer") as publisher:
            for frame in range(5):
                assert publisher.publish_frame(frame, frame / 25, [face] if frame % 2 else [], source="unit")
        messages = subscriber.wait_for(5)
    finally:
        subscriber.close()
    assert [m["frame"] for m in messages] == [0, 1, 2, 3, 4]
    assert messages[1]["faces"] == [face] and messages[0]["faces"] == []
    assert messages[3]["time_s"] == pytest.approx(0.12) and messages[3]["source"] == "unit"
    assert publisher.stats.attempted == 5 and publisher.stats.failed == 0


def test_connection_refused_is_a_clear_error() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(MqttConnectionError, match=f"127.0.0.1:{port}"):
        MqttPublisher("127.0.0.1", port, connect_timeout_s=2).connect()


def test_publishing_after_the_broker_went_away_is_counted_not_raised(broker_port: int) -> None:
    publisher = MqttPublisher("127.0.0.1", broker_port, topic="test/gone", max_queued_messages=2).connect()
    publisher._client.disconnect()  # simulate the link dropping mid-run (no reconnect after a clean disconnect)
    time.sleep(0.2)
    results = [publisher.publish_frame(frame, frame / 25, []) for frame in range(5)]
    publisher.close(drain_timeout_s=0.2)
    assert publisher.stats.attempted == 5
    assert publisher.stats.failed == 5, results
    assert "0 of 5" in publisher.stats.summary()


def test_wildcard_topic_is_rejected() -> None:
    with pytest.raises(ValueError, match="wildcards"):
        MqttPublisher("127.0.0.1", 1, topic="fer/#")


def test_frame_message_is_compact_json() -> None:
    assert json.loads(frame_message(3, 0.123456, [])) == {"frame": 3, "time_s": 0.1235, "faces": []}


def test_video_command_publishes_one_message_per_frame(broker_port: int, tmp_path, capsys) -> None:
    from helpers.video_material import detectable_sample_faces, frame_with_faces, save_tiny_model

    from fer_utils.video.stream import open_video_writer

    model = save_tiny_model(tmp_path / "tiny.keras")
    faces, _ = detectable_sample_faces(1)
    video = tmp_path / "one_face.mp4"
    writer = open_video_writer(video, 10, (640, 480))
    for _ in range(4):
        writer.write(frame_with_faces([faces[0]], [(250, 150)])[0])
    writer.release()
    subscriber = Subscriber(broker_port, "test/video")
    try:
        code = cli.main(
            [
                "video",
                str(video),
                "--model",
                str(model),
                "--output-dir",
                str(tmp_path / "out"),
                "--no-video",
                "--quiet",
                "--mqtt-host",
                "127.0.0.1",
                "--mqtt-port",
                str(broker_port),
                "--mqtt-topic",
                "test/video",
            ]
        )
        messages = subscriber.wait_for(4)
    finally:
        subscriber.close()
    assert code == cli.EXIT_OK
    assert "4 of 4 MQTT message(s) published, 0 failed" in capsys.readouterr().out
    assert [m["frame"] for m in messages] == [0, 1, 2, 3]
    assert all(len(m["faces"]) == 1 and m["source"] == "one_face" for m in messages)
    assert abs(sum(messages[0]["faces"][0]["probabilities"].values()) - 1) < 1e-4
