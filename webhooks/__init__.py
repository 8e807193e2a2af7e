"""The webhook transport: platforms announce new subscribers here; the core verifies and acts."""
