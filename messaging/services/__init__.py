"""Business actions of the messaging app, one module per area."""
