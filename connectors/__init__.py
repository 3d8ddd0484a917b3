"""One adapter per platform behind `connectors.base.Connector`.

The app builds them (see `plugin.platforms`); nothing here knows Flask, the ORM or the app.
"""
