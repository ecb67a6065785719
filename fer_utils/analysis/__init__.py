"""Scoring saved models: accuracy per split and class, confusions, calibration, saliency."""
