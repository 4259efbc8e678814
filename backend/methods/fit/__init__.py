"""The baseline whole-body solve `fit`: analytic IK initialisation, then one robust optimisation of the clip."""
