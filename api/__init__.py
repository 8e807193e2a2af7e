"""The REST transport: the integrations API and the email validation API under /v1."""
