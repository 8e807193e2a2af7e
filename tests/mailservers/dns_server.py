"""A real authoritative DNS server on loopback (UDP and TCP), answering from a dict zone.

Names not in the zone are NXDOMAIN; names in `servfail` get SERVFAIL; names in `silent` get no
answer at all (a timeout for the client).
"""

from __future__ import annotations

import asyncio
import struct
from collections import Counter
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


@dataclass
class Zone:
    records: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # name -> type -> rdata texts
    servfail: set[str] = field(default_factory=set)
    silent: set[str] = field(default_factory=set)

    def add(self, name: str, rdtype: str, *values: str) -> None:
        self.records.setdefault(name.lower().rstrip("."), {}).setdefault(rdtype, []).extend(values)


class DnsServer:
    def __init__(self, zone: Zone, host: str = "127.0.0.1") -> None:
        self.zone = zone
        self.host = host
        self.port = 0
        self.queries: Counter[str] = Counter()  # "MX gmail.com" -> count
        self._transport: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    async def start(self, port: int = 0) -> None:
        loop = asyncio.get_running_loop()
        server = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport  # type: ignore[assignment]

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                wire = server.answer(data)
                if wire is not None:
                    self.transport.sendto(wire, addr)  # type: ignore[attr-defined]

        self._transport, _ = await loop.create_datagram_endpoint(Udp, local_addr=(self.host, port))
        self.port = self._transport.get_extra_info("sockname")[1]
        self._tcp = await asyncio.start_server(self._tcp_client, self.host, self.port)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                wire = self.answer(await reader.readexactly(size))
                if wire is None:
                    continue
                writer.write(struct.pack("!H", len(wire)) + wire)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def answer(self, data: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return None
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries[f"{rdtype} {name}"] += 1
        if name in self.zone.silent:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if name in self.zone.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        node = self.zone.records.get(name)
        if node is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response.to_wire()
        values = node.get(rdtype, [])
        if values:
            response.answer.append(dns.rrset.from_text_list(question.name, 300, dns.rdataclass.IN, rdtype, values))
        return response.to_wire()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._tcp is not None:
            self._tcp.close()
