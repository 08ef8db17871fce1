"""Leaksense edge gateway, the part that runs on a Raspberry Pi.

Data path: MQTT intake (:mod:`.mqtt`) → parsing and validation (:mod:`.intake`) →
local detection (:mod:`.detector`) → outbox (:mod:`.outbox`) → HTTP uplink
(:mod:`.uplink`), orchestrated by :class:`leaksense.edge.gateway.Gateway`.
Besides the shared core it uses paho-mqtt, numpy, msgspec, prometheus-client and
cryptography (signed models); its HTTP client (:mod:`.http`) is the standard
library's, which keeps the gateway's resident memory small.
"""
