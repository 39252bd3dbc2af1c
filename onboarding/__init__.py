"""Aisle Keys domain: integrations, onboarding packages, checks, promotion, access and audit."""

__version__ = "0.1.0"
