"""Resource quantities (k8s.io/apimachinery/pkg/api/resource): parsing `100m`, `1.5Gi`, `2e3`, exact arithmetic, and
the canonical text Kubernetes prints in messages (`Quantity.String()`): `2000m` → `2`, `1024Mi` → `1Gi`,
`0.5` → `500m`. Values are exact fractions, rounded up to nano units like Kubernetes."""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from fractions import Fraction

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -3, "u": -2, "m": -1, "": 0, "k": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
_DECIMAL_SUFFIX = {power: suffix for suffix, power in _DECIMAL.items()}
_BINARY_SUFFIX = {power: suffix for suffix, power in _BINARY.items()}
_TEXT = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")
_NANO = Fraction(1, 10**9)


class QuantityError(ValueError):
    pass


@dataclass(frozen=True, order=False)
class Quantity:
    value: Fraction
    format: str = "DecimalSI"  # BinarySI, DecimalSI or DecimalExponent: how String() prints it

    @classmethod
    def parse(cls, text) -> Quantity:
        if isinstance(text, bool):
            raise QuantityError(f"quantities must match the regular expression: {text!r}")
        if isinstance(text, (int, float)):
            text = repr(text) if isinstance(text, float) else str(text)
        if not isinstance(text, str):
            raise QuantityError(f"quantities must match the regular expression "
                                f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {text!r}")
        return _parse_text(text)

    def __add__(self, other: Quantity) -> Quantity:
        """The sum prints in the first operand's format, or the second's when adding to zero (as quota sums)."""
        return Quantity(self.value + other.value, self.format if self.value else other.format)

    def __sub__(self, other: Quantity) -> Quantity:
        return Quantity(self.value - other.value, self.format)

    def __lt__(self, other: Quantity) -> bool:
        return self.value < other.value

    def __le__(self, other: Quantity) -> bool:
        return self.value <= other.value

    def __gt__(self, other: Quantity) -> bool:
        return self.value > other.value

    def __ge__(self, other: Quantity) -> bool:
        return self.value >= other.value

    def __eq__(self, other) -> bool:
        return isinstance(other, Quantity) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __str__(self) -> str:
        return canonical(self.value, self.format)


ZERO = Quantity(Fraction(0))


def _round_up_to_nano(value: Fraction) -> Fraction:
    return Fraction(math.ceil(value / _NANO)) * _NANO


def canonical(value: Fraction, fmt: str) -> str:
    """The shortest exact form with the largest unit whose mantissa is an integer."""
    if value == 0:
        return "0"
    sign, magnitude = ("-", -value) if value < 0 else ("", value)
    if fmt == "BinarySI" and magnitude.denominator == 1 and magnitude >= 1024:
        power = max(p for p in range(0, 7) if magnitude % 1024 ** p == 0)
        return f"{sign}{magnitude // 1024 ** power}{_BINARY_SUFFIX.get(power, '')}"
    power = max(p for p in range(-3, 7) if (magnitude / Fraction(10) ** (3 * p)).denominator == 1)
    mantissa = int(magnitude / Fraction(10) ** (3 * power))
    if fmt == "DecimalExponent":
        return f"{sign}{mantissa}" + (f"e{3 * power}" if power else "")
    return f"{sign}{mantissa}{_DECIMAL_SUFFIX[power]}"


def resource_list(values: dict | None) -> dict[str, Quantity]:
    """A ResourceList dict ({"cpu": "100m"}) as Quantities; QuantityError names the bad entry."""
    result = {}
    for name, text in (values or {}).items():
        try:
            result[name] = Quantity.parse(text)
        except QuantityError as error:
            raise QuantityError(f"{name}: {error}") from None
    return result


def pretty(values: dict[str, Quantity]) -> str:
    """`cpu=500m,memory=1Gi`: keys sorted, as quota messages print resource lists."""
    return ",".join(f"{name}={values[name]}" for name in sorted(values))


@functools.lru_cache(maxsize=4096)  # objects repeat a few quantities; a parse costs ~10 us of Fraction arithmetic
def _parse_text(text: str) -> Quantity:
    """Quantity.parse of a string (a Quantity is immutable, so one parse serves every caller)."""
    match = _TEXT.match(text.strip())
    if not match:
        raise QuantityError(f"quantities must match the regular expression "
                            f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {text!r}")
    number, suffix = Fraction(match.group(1)), match.group(2) or ""
    if suffix in _BINARY:
        value, fmt = number * 1024 ** _BINARY[suffix], "BinarySI"
    elif suffix in _DECIMAL:
        value, fmt = number * Fraction(10) ** (3 * _DECIMAL[suffix]), "DecimalSI"
    else:
        value, fmt = number * Fraction(10) ** int(suffix[1:]), "DecimalExponent"
    return Quantity(_round_up_to_nano(value), fmt)
