"""Shopify behind `connectors.base.Connector`: the GraphQL Admin API only.

`connector.ShopifyConnector` reads variants and stock and writes badges; `graphql` is the paced
HTTP client; `oauth` and `session_token` are the install and embedded-admin checks. The app
builds the connector with the shop's credentials (see `plugin.platforms`) and keeps, per
variant, the selling policy the connector reports it wrote.
"""
