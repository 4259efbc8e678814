"""Shared optimisation building blocks: robust losses, priors, joint limits, contacts, IK, a fast landmark rig."""
