"""The whole-body solve (IK start + robust whole-clip optimisation) as a building block methods share."""
