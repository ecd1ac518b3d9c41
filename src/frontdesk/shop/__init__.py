"""The store: its customers, orders and products, the rules its policy sets, and catalog search."""
