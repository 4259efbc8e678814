"""Learned motion priors shared by methods (hand motion VAE, ...)."""
