"""Local emulators of the email platforms, built from their public docs and official specs."""
