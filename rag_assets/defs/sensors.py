"""Sensors. Everything in SENSORS is registered."""

SENSORS: list = []
