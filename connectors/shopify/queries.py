"""Every GraphQL Admin API document the Shopify connector sends (API 2025-01).

Each module-level string that holds an operation is validated against Shopify's schema in
tests/test_shopify_graphql_schema.py, which walks this module, so a new document cannot skip it.

Page sizes keep each query's requested cost under Shopify's 1,000-point single-query limit:
a product costs about 1 + (2 + 10 variants x (1 + 1 + 2 + 5 levels x 3)) = 193 points, so five
per catalogue page is about 970. Products with more variants or locations are completed by the
follow-up page queries below.
"""

from __future__ import annotations

# App-owned metafields: only this app can write them, the merchant can read them in the admin,
# and the theme app extension reads them as `variant.metafields['$app:backorder'].state` etc.
METAFIELD_NAMESPACE = "$app:backorder"
KEY_STATE = "state"
KEY_LABEL = "label"
KEY_ETA = "eta"
METAFIELD_TYPES = {
    KEY_STATE: "single_line_text_field",
    KEY_LABEL: "single_line_text_field",
    KEY_ETA: "date",
}
# The shop's own metafield (type json) holding what the theme block composes each badge from:
# the labels in every published language, the colours, the language to fall back on.
KEY_STOREFRONT = "storefront"
# metafieldsSet accepts at most 25 metafields per call.
METAFIELDS_PER_CALL = 25
# Products per reconciliation page: each carries up to 10 variants with 5 levels, so a page
# stays well under Shopify's per-query cost limit.
CATALOG_PAGE_SIZE = 5

_LEVEL_FIELDS = """
fragment BadgeLevelFields on InventoryLevel {
  location { id }
  quantities(names: ["available"]) { name quantity }
}
"""

_VARIANT_FIELDS = (
    """
fragment BadgeVariantFields on ProductVariant {
  id
  sku
  title
  inventoryPolicy
  inventoryItem {
    id
    tracked
    inventoryLevels(first: 5) {
      pageInfo { hasNextPage endCursor }
      nodes { ...BadgeLevelFields }
    }
  }
}
"""
    + _LEVEL_FIELDS
)

_PRODUCT_FIELDS = (
    """
fragment BadgeProductFields on Product {
  id
  title
  variants(first: 10) {
    pageInfo { hasNextPage endCursor }
    nodes { ...BadgeVariantFields }
  }
}
"""
    + _VARIANT_FIELDS
)

PRODUCT = (
    """
query BadgeProduct($id: ID!) {
  product(id: $id) { ...BadgeProductFields }
}
"""
    + _PRODUCT_FIELDS
)

PRODUCT_VARIANTS_PAGE = (
    """
query BadgeProductVariants($id: ID!, $after: String!) {
  product(id: $id) {
    variants(first: 10, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { ...BadgeVariantFields }
    }
  }
}
"""
    + _VARIANT_FIELDS
)

INVENTORY_LEVELS_PAGE = (
    """
query BadgeInventoryLevels($id: ID!, $after: String!) {
  inventoryItem(id: $id) {
    inventoryLevels(first: 50, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { ...BadgeLevelFields }
    }
  }
}
"""
    + _LEVEL_FIELDS
)

PRODUCT_BY_INVENTORY_ITEM = (
    """
query BadgeProductByInventoryItem($id: ID!) {
  inventoryItem(id: $id) {
    variant { product { ...BadgeProductFields } }
  }
}
"""
    + _PRODUCT_FIELDS
)

PRODUCT_BY_VARIANT = (
    """
query BadgeProductByVariant($id: ID!) {
  productVariant(id: $id) {
    product { ...BadgeProductFields }
  }
}
"""
    + _PRODUCT_FIELDS
)

LEVEL_BY_INVENTORY_ITEM = """
query BadgeLevelByInventoryItem($id: ID!, $locationId: ID!) {
  inventoryItem(id: $id) {
    inventoryLevel(locationId: $locationId) {
      quantities(names: ["available"]) { name quantity }
    }
  }
}
"""

LEVEL_BY_VARIANT = """
query BadgeLevelByVariant($id: ID!, $locationId: ID!) {
  productVariant(id: $id) {
    inventoryItem {
      inventoryLevel(locationId: $locationId) {
        quantities(names: ["available"]) { name quantity }
      }
    }
  }
}
"""

CATALOG_PAGE = (
    """
query BadgeCatalogPage($after: String) {
  productsCount { count }
  products(first: PAGE_SIZE, after: $after, sortKey: ID) {
    pageInfo { hasNextPage endCursor }
    nodes { ...BadgeProductFields }
  }
}
""".replace("PAGE_SIZE", str(CATALOG_PAGE_SIZE))
    + _PRODUCT_FIELDS
)

METAFIELDS_SET = """
mutation BadgeMetafieldsSet($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) {
    metafields { id namespace key }
    userErrors { field message code elementIndex }
  }
}
"""

# A badge without an ETA (or label) must lose the old one, and Shopify refuses blank values:
# the batch's deletions ride in the same request as its metafieldsSet, so one variant's badge
# is written by one request.
METAFIELDS_SET_AND_DELETE = """
mutation BadgeMetafieldsWrite(
  $metafields: [MetafieldsSetInput!]!
  $deletions: [MetafieldIdentifierInput!]!
) {
  metafieldsSet(metafields: $metafields) {
    metafields { id namespace key }
    userErrors { field message code elementIndex }
  }
  metafieldsDelete(metafields: $deletions) {
    deletedMetafields { ownerId namespace key }
    userErrors { field message }
  }
}
"""

INVENTORY_POLICY_UPDATE = """
mutation BadgeInventoryPolicy($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants) {
    productVariants { id inventoryPolicy }
    userErrors { field message code }
  }
}
"""

# Liquid may read an app-owned metafield only where a definition grants storefront access, so
# the connector makes sure one exists for each badge key (see ShopifyConnector.prepare_store).
BADGE_DEFINITIONS = """
query BadgeMetafieldDefinitions($namespace: String!) {
  metafieldDefinitions(first: 10, ownerType: PRODUCTVARIANT, namespace: $namespace) {
    nodes { id key access { storefront } }
  }
}
"""

BADGE_DEFINITION_CREATE = """
mutation BadgeMetafieldDefinitionCreate($definition: MetafieldDefinitionInput!) {
  metafieldDefinitionCreate(definition: $definition) {
    createdDefinition { id key }
    userErrors { field message code }
  }
}
"""

BADGE_DEFINITION_UPDATE = """
mutation BadgeMetafieldDefinitionUpdate($definition: MetafieldDefinitionUpdateInput!) {
  metafieldDefinitionUpdate(definition: $definition) {
    updatedDefinition { id key }
    userErrors { field message code }
  }
}
"""

# Before writing the storefront configuration: the shop's GID (the metafield's owner), the value
# already there, and whether the theme may read it (a SHOP definition with storefront access).
STOREFRONT_CONFIG = """
query BackorderStorefrontConfig($namespace: String!, $key: String!) {
  shop {
    id
    metafield(namespace: $namespace, key: $key) { jsonValue }
  }
  metafieldDefinitions(first: 1, ownerType: SHOP, namespace: $namespace, key: $key) {
    nodes { id key access { storefront } }
  }
}
"""

BADGE_DEFINITION_NAMES = {
    KEY_STATE: "Backorder badge state",
    KEY_LABEL: "Backorder badge label",
    KEY_ETA: "Backorder ETA",
}

# Orders, for the backorder ledger ------------------------------------------------------------
# An order costs about 1 + (2 + 20 lines x 3) + 5 fulfilments x (1 + 2 + 20 x 2) = 278 points
# as requested, so three fit on a page of orders changed since the last reconciliation. Longer
# orders are completed by the follow-up page queries below.
ORDER_LINES_PER_PAGE = 20
ORDER_FULFILLMENTS_PER_PAGE = 5
ORDERS_PAGE_SIZE = 3
# What Shopify withholds without protected-customer-data approval (or the read_customers
# scope): those fields come back null with an ACCESS_DENIED error; the order itself is used.
REDACTABLE_ORDER_FIELDS = frozenset(
    {"customer", "email", "firstName", "lastName", "customerLocale"}
)

_LINE_ITEM_FIELDS = """
fragment BackorderLineItemFields on LineItem {
  id
  quantity
  currentQuantity
  refundableQuantity
  variant { id }
  product { id }
}
"""

_ORDER_FIELDS = (
    """
fragment BackorderOrderFields on Order {
  id
  name
  createdAt
  updatedAt
  cancelledAt
  email
  customerLocale
  customer { firstName lastName }
  lineItems(first: LINES) {
    pageInfo { hasNextPage endCursor }
    nodes { ...BackorderLineItemFields }
  }
  fulfillmentsCount { count }
  fulfillments(first: FULFILLMENTS) {
    id
    status
    fulfillmentLineItems(first: LINES) {
      pageInfo { hasNextPage endCursor }
      nodes { quantity lineItem { id } }
    }
  }
}
""".replace("FULFILLMENTS", str(ORDER_FULFILLMENTS_PER_PAGE)).replace(
        "LINES", str(ORDER_LINES_PER_PAGE)
    )
    + _LINE_ITEM_FIELDS
)

ORDER = (
    """
query BackorderOrder($id: ID!) {
  order(id: $id) { ...BackorderOrderFields }
}
"""
    + _ORDER_FIELDS
)

ORDERS_CHANGED = (
    """
query BackorderOrdersChanged($query: String!, $after: String) {
  orders(first: PAGE_SIZE, after: $after, sortKey: UPDATED_AT, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes { ...BackorderOrderFields }
  }
}
""".replace("PAGE_SIZE", str(ORDERS_PAGE_SIZE))
    + _ORDER_FIELDS
)

ORDER_LINES_PAGE = (
    """
query BackorderOrderLines($id: ID!, $after: String!) {
  order(id: $id) {
    lineItems(first: 50, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { ...BackorderLineItemFields }
    }
  }
}
"""
    + _LINE_ITEM_FIELDS
)

# An order with more fulfilments than the first page holds: every one's id and status, whose
# lines are then read with FULFILLMENT_LINES_PAGE.
ORDER_FULFILLMENTS = """
query BackorderOrderFulfillments($id: ID!) {
  order(id: $id) {
    fulfillments(first: 250) { id status }
  }
}
"""

FULFILLMENT_LINES_PAGE = """
query BackorderFulfillmentLines($id: ID!, $after: String) {
  fulfillment(id: $id) {
    fulfillmentLineItems(first: 50, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { quantity lineItem { id } }
    }
  }
}
"""

# The store itself: its time zone, name, public contact address and the country of its
# address (its holidays close it). Readable with any scope.
STORE = """
query BackorderStore {
  shop {
    name
    ianaTimezone
    contactEmail
    billingAddress { countryCodeV2 }
  }
}
"""

# The store's published languages (read_locales): the primary one is the store's own.
STORE_LOCALES = """
query BackorderStoreLocales {
  shopLocales(published: true) { locale primary }
}
"""

# The store's stock locations and their names (read_locations), so the merchant chooses which
# count by name. Shopify allows at most 250 locations on any plan (1,000 with Plus, of which the
# first 250 are kept: names are a convenience, stock still counts by id).
LOCATIONS = """
query BackorderLocations {
  locations(first: 250) { nodes { id name isActive } }
}
"""

# Cancelling for a customer who asked (write_order_edits): remove one line by an order edit,
# begun, set to 0 with the units restocked, and committed. A calculated line item keeps the
# numeric id of the order's line item, which is how the line is found in the edit.
ORDER_EDIT_BEGIN = """
mutation BackorderOrderEditBegin($id: ID!) {
  orderEditBegin(id: $id) {
    calculatedOrder {
      id
      lineItems(first: 250) { nodes { id quantity editableQuantity } }
    }
    userErrors { field message }
  }
}
"""

ORDER_EDIT_SET_QUANTITY = """
mutation BackorderOrderEditSetQuantity($id: ID!, $lineItemId: ID!) {
  orderEditSetQuantity(id: $id, lineItemId: $lineItemId, quantity: 0, restock: true) {
    calculatedLineItem { id quantity }
    userErrors { field message }
  }
}
"""

ORDER_EDIT_COMMIT = """
mutation BackorderOrderEditCommit($id: ID!, $staffNote: String) {
  orderEditCommit(id: $id, notifyCustomer: true, staffNote: $staffNote) {
    order { id }
    userErrors { field message }
  }
}
"""

# The whole order (write_orders): refunded in full, restocked, the customer notified. It runs
# as a job on Shopify's side; the orders/cancelled webhook follows when it is done.
ORDER_CANCEL = """
mutation BackorderOrderCancel($orderId: ID!, $staffNote: String) {
  orderCancel(
    orderId: $orderId
    reason: CUSTOMER
    refund: true
    restock: true
    notifyCustomer: true
    staffNote: $staffNote
  ) {
    job { id done }
    orderCancelUserErrors { field message code }
  }
}
"""
