"""Schedules. Everything in SCHEDULES is registered."""

SCHEDULES: list = []
