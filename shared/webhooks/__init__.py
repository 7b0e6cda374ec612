"""Webhooks: verifying what providers send us, and signing what we send to apps."""
