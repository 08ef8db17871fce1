"""Training defaults, apart from the numpy modules so that the ``leaksense`` command
can show them in its help without loading the training stack."""

MIN_DAYS = 7.0
"""Below a week of history a series has not shown its Saturday and Sunday: the
gateway's own warm-up (which keeps learning) does better than a frozen model."""
