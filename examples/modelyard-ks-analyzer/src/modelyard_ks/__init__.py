"""An example modelyard analyzer plugin: Kolmogorov-Smirnov separation of scores."""
