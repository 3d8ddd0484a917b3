"""Local stand-ins for the platforms' HTTP APIs, served on 127.0.0.1.

Shared by the tests and the benchmarks (neither imports the other). They answer as the
platforms document: the fake Shopify validates every operation against the Admin schema and
enforces the leaky bucket; the fake BigCommerce enforces the store's request quota. The app
never imports them; it is pointed at them through `SHOPIFY_API_BASE_OVERRIDE` and
`BIGCOMMERCE_API_BASE_OVERRIDE` outside production.
"""
