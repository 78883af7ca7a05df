"""Forms of the messaging app, by area: apps, send, templates, audit."""
