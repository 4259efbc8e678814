"""Learned hand motion prior (a VAE over 128-frame windows of finger motion) and the HMP-style fitting using it."""
