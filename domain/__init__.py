"""The app's own vocabulary: events, badge kinds, badge pushes and order facts.

Pure data, no I/O: nothing here imports Flask, SQLAlchemy, Redis or RQ, nor any other package of
this project. Platform adapters (`connectors`, `webhooks`) speak it to the app, and the pure
decisions (`plugin.badge_engine`, `plugin.services.restock`) are written in it. An
import-linter contract in pyproject.toml keeps it so.
"""
