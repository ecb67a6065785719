"""Faces in video: detection, recognition, smoothing over time, MQTT publishing, synthetic clips."""
