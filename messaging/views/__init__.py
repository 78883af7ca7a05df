"""Views of the messaging app, by area: apps, send, templates, batches, audit."""
