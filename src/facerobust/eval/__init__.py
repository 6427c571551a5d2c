"""Evaluation: metrics, clean accuracy, and the audit runner."""
