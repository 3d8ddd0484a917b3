"""Receiving, verifying and recording webhooks, and turning platform payloads into app events."""
