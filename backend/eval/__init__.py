"""Accuracy and smoothness metrics for body and hand motion, as the HMR papers compute them."""
