"""Small HTTP helpers shared by the app's routes and the embedded engine."""
