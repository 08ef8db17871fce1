"""Detection model training, server side (numpy, scikit-learn), and artifact signing.

Gateways never import this package: they verify and run the signed JSON artifacts
with numpy alone. ``train`` fits a series' demand profile with a robust regression,
``signing`` signs artifacts with the server's Ed25519 key, ``history`` reads what to
learn from the server's stores and ``pipeline`` runs ``leaksense models train``.
"""
