"""Alert notifications: a durable outbox, e-mail over SMTP, a signed JSON webhook.

``policy.py`` says who and when (on-call list, quiet hours), ``messages.py`` what
(French and English text, JSON payload), ``outbox.py`` keeps and claims the rows,
``email.py`` and ``webhook.py`` send them, ``worker.py`` runs it all in a thread.
See ``docs/alerts.md``.
"""
