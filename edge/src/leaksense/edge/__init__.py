"""Leaksense edge gateway, the part that runs on a Raspberry Pi.

Data path: MQTT intake (:mod:`.mqtt`) → parsing and validation (:mod:`.intake`) →
local detection (:mod:`.detector`) → outbox (:mod:`.outbox`) → HTTP uplink
(:mod:`.uplink`), orchestrated by :class:`leaksense.edge.gateway.Gateway`.
It depends on the shared core, paho-mqtt and httpx only.
"""
