"""Conversation test suites: YAML conversations through the real pipeline, counterfactual
checks, and evaluation reports."""
