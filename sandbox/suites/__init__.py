"""Event suites: named lists of events with expectations, run through the pipeline."""
