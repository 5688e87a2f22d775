"""poptrain: Population-Based Training."""
