"""BigCommerce: the V3 client (with the store's shared rate limit) and the catalogue connector.

Kept import-light: the install callbacks import `client` without pulling in the connector.
"""
