"""``leaksense provision``: credentials and TLS material for a site, written idempotently.

- ``node``: a sensor node's broker user (mosquitto password file), its ACL entry and
  its ESPHome ``secrets.yaml`` (:mod:`.node`);
- ``gateway``: the gateway's uplink token, issued in the server database and written to
  the gateway's environment file (:mod:`.gateway`); ``gateway-mqtt``: its broker user;
- ``tls``: a CA and a broker certificate, self-signed or from a given CA (:mod:`.tls`).

Every step reports ``created``, ``updated`` or ``unchanged``; running a command twice
changes nothing unless ``--rotate`` asks for a new secret. Secret files are mode 0600.
"""
