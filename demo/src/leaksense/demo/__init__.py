"""The all-in-one demo: a broker, the server on SQLite, a gateway and simulated
Saint-Savin sensors in one process, ending with the yield before and after repairs."""
