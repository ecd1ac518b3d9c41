"""Frontdesk: a self-hosted AI front desk for customer service and sales."""

__version__ = "0.1.0"
