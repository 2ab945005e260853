"""Evaluation analyzers: plugins that turn a table of predictions into exact, stored results."""
