"""Dashboard users: roles (technician, manager, admin), argon2 passwords, throttled login.

``models`` holds the tables, ``passwords`` the hashing, ``throttle`` the failed-login
counts, ``service`` what routes and the ``leaksense server user`` commands call.
"""
