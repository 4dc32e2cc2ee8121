"""Service ClusterIPs and NodePorts. Each allocated value is a key in storage (created atomically), so several API
servers sharing one storage never hand out the same value, and a restart loses nothing.

Dynamic allocation takes the upper part of each range first and the lower band only once the rest is full (upstream's
ServiceIPStaticSubrange and ServiceNodePortStaticSubrange), so values users and installers pick by hand — the cluster
DNS at the 10th Service address, well-known NodePorts — stay free for them.

Keys live outside every resource prefix: /registry/kpy/serviceips/<ip> and /registry/kpy/servicenodeports/<port>,
each holding the owner (`namespace/name`) so an owner re-asking for its own value succeeds (idempotent retries).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from kpy_components.apiserver.storage.interface import KeyExists, KeyNotFound, Storage

NODE_PORT_RANGE = (30000, 32767)


def static_band(size: int, divisor: int, cap: int) -> int:
    """How many values at the start of a range of `size` are left for static assignment: size/divisor, at least 16
    and at most `cap` (upstream's formula), never more than the range."""
    return min(size, max(16, min(cap, size // divisor)))


class AllocationError(Exception):
    """The value cannot be had: taken by another owner, outside the range, or the range is full."""


class _RangeAllocator:
    def __init__(self, storage: Storage, prefix: str, what: str):
        self.storage, self.prefix, self.what = storage, prefix, what

    def candidates(self) -> Iterator[str]:
        raise NotImplementedError

    def check(self, value: str) -> None:
        """AllocationError when `value` is outside the range."""

    async def _owned(self) -> dict[str, str]:
        listed = await self.storage.list(self.prefix)
        return {item["metadata"]["name"]: item.get("owner", "") for item in listed.items}

    async def reserve(self, value: str, owner: str, dry_run: bool = False) -> str:
        self.check(value)
        if dry_run:
            current = (await self._owned()).get(value)
            if current not in (None, owner):
                raise AllocationError(f"provided {self.what} is already allocated")
            return value
        try:
            await self.storage.create(self.prefix + value, {"metadata": {"name": value}, "owner": owner})
        except KeyExists:
            held = await self.storage.get(self.prefix + value)
            if held.get("owner") != owner:
                raise AllocationError(f"provided {self.what} is already allocated") from None
        return value

    async def allocate(self, owner: str, dry_run: bool = False) -> str:
        taken = await self._owned()
        for value in self.candidates():
            if value in taken:
                continue
            if dry_run:
                return value
            try:
                return await self.reserve(value, owner)
            except AllocationError:
                continue  # another server took it meanwhile
        raise AllocationError(f"range is full: no {self.what} left to allocate")

    async def release(self, value: str, owner: str) -> None:
        try:
            held = await self.storage.get(self.prefix + value)
            if held.get("owner") == owner:
                await self.storage.delete(self.prefix + value)
        except KeyNotFound:
            pass


class ClusterIPAllocator(_RangeAllocator):
    """Addresses of the service CIDR. The first usable address is the `kubernetes` Service's."""

    def __init__(self, storage: Storage, cidr: str):
        super().__init__(storage, "/registry/kpy/serviceips/", "IP")
        self.network = ipaddress.ip_network(cidr, strict=False)

    @property
    def first(self) -> str:
        return str(self.network.network_address + 1)

    def candidates(self) -> Iterator[str]:
        last = self.network.num_addresses - 1  # the broadcast address is never handed out
        band = static_band(self.network.num_addresses, 16, 256)
        for offset in (*range(max(band, 2), last), *range(2, min(band, last))):
            yield str(self.network.network_address + offset)

    def check(self, value: str) -> None:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise AllocationError(f"{value!r} is not an IP address") from None
        if address not in self.network or address in (self.network.network_address,
                                                      self.network.broadcast_address):
            raise AllocationError(f"provided IP is not in the valid range. The range of valid IPs is {self.network}")


class NodePortAllocator(_RangeAllocator):
    def __init__(self, storage: Storage, first: int = NODE_PORT_RANGE[0], last: int = NODE_PORT_RANGE[1]):
        super().__init__(storage, "/registry/kpy/servicenodeports/", "port")
        self.first, self.last = first, last

    def candidates(self) -> Iterator[str]:
        split = self.first + static_band(self.last - self.first + 1, 32, 128)
        return (str(port) for port in (*range(split, self.last + 1), *range(self.first, split)))

    def check(self, value: str) -> None:
        if not value.isdigit() or not self.first <= int(value) <= self.last:
            raise AllocationError(f"provided port is not in the valid range. The range of valid ports is "
                                  f"{self.first}-{self.last}")
