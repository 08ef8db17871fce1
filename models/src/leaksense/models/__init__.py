"""Detection model training, server side (numpy, scikit-learn).

Gateways never import this package: they run the exported JSON artifacts with the
shared core and numpy only. This first version fits the placeholder threshold
detector's per-sensor ceilings; the learned models come with the detection issue.
"""
