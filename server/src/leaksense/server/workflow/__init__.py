"""Alert workflow: acknowledge, assign, resolve, notes, audit log, escalation, feedback.

``service.py`` is the API that routes and the dashboard call; ``models.py`` the
tables; ``received.py`` what ingest does when a gateway sends an alert;
``escalation.py`` who is notified when; ``feedback.py`` the false-alarm feedback.
See ``docs/alerts.md``.
"""
