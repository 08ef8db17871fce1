"""paho-mqtt adapter (2.x, VERSION2 callbacks): subscribe, reconnect, resubscribe.

The session is persistent (fixed client id, ``clean_session=False``) so that QoS 1
messages published while the gateway is away are queued by the broker and
delivered on reconnection; subscriptions are renewed in every ``on_connect``.

Acknowledgement is manual: a QoS 1 message is handed over with a :data:`Receipt`,
and its PUBACK leaves only when :meth:`MqttIntake.ack` is called with it, once the
reading is in the durable outbox. A message not acknowledged when the gateway dies
is re-sent by the broker on the next connection. Receipts from an earlier
connection are not acknowledged on the new one: the broker re-sends those messages
with their original ids, and the server stores a reading once whatever happens.
"""

from __future__ import annotations

import logging
import ssl
import struct
import threading
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from leaksense.edge.config import MqttConfig

log = logging.getLogger(__name__)
PUBACK = struct.Struct("!BBH")
"""A PUBACK packet (MQTT 3.1.1): type, remaining length 2, message id."""
Receipt = tuple[int, int]
"""``(connection number, MQTT message id)`` of a QoS 1 message awaiting its PUBACK."""
MessageHandler = Callable[[str, bytes, Receipt | None], None]
"""``(topic, payload, receipt)``; the receipt is None for QoS 0 (nothing to acknowledge)."""


class MqttIntake:
    """Delivers every message on ``topics`` to ``handler`` (from paho's network thread)."""

    def __init__(
        self, config: MqttConfig, client_id: str, topics: Sequence[str], handler: MessageHandler
    ) -> None:
        self._config = config
        self._topics = list(topics)
        self._handler = handler
        self.connected = threading.Event()
        self.connections = 0
        self._stopping = False
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        if config.username:
            password = config.password.get_secret_value() if config.password else None
            client.username_pw_set(config.username, password)
        if config.tls_ca_file:
            client.tls_set(ca_certs=str(config.tls_ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_queued_messages_set(0)
        client.manual_ack_set(True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client

    def start(self) -> None:
        """Connect in the background; paho retries until the broker answers."""
        self._client.connect_async(self._config.host, self._config.port, self._config.keepalive_s)
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect, stop paho's thread and close every socket the client opened.

        paho-mqtt 2.x's ``loop_stop`` leaves open the loopback socket pair that
        ``loop_start`` made to wake its thread; only ``Client.__del__`` closes it. The
        client sits in a reference cycle (its callbacks are this object's methods), so
        the garbage collector may finalize those sockets before the client, which
        leaks two file descriptors per intake and raises ``ResourceWarning``.
        """
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()
        # What Client.__del__ does: the network socket (left open when the loop stops
        # before the disconnect went out) and the wake-up pair.
        self._client._reset_sockets()

    def publish(self, topic: str, payload: str, *, retain: bool = False) -> None:
        """Publish at QoS 1 (queued by paho while disconnected)."""
        self._client.publish(topic, payload, qos=1, retain=retain)

    def ack(self, receipts: Sequence[Receipt]) -> None:
        """Send the PUBACKs of stored messages, in the order they were received.

        They go out as one write: ``Client.ack`` would queue each PUBACK as a packet of
        its own, with a wake-up byte and a ``send`` per message. The bytes are exactly
        those of the separate PUBACKs, queued like them (paho 2.x's packet queue).
        """
        current = self.connections
        pack = PUBACK.pack
        packets = b"".join(
            [pack(mqtt.PUBACK, 2, mid) for connection, mid in receipts if connection == current]
        )
        if packets:
            self._client._packet_queue(mqtt.PUBACK, packets, 0, 0)

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: Any,
    ) -> None:
        if reason.is_failure:
            log.error("MQTT broker refused the connection: %s", reason)
            return
        self.connections += 1
        client.subscribe([(topic, 1) for topic in self._topics])
        log.info("MQTT connected to %s:%d", self._config.host, self._config.port)
        self.connected.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _properties: Any,
    ) -> None:
        self.connected.clear()
        if not self._stopping:
            log.warning("MQTT disconnected (%s); paho reconnects", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        receipt = (self.connections, msg.mid) if msg.qos else None
        self._handler(msg.topic, bytes(msg.payload), receipt)
