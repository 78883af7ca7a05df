"""Views of the messaging app, by area: apps, send, templates, audit (batches: batch_views)."""
