"""The pydantic configuration every input model uses: exact types (no "false" for False, no 1 for
True), finite numbers only (NaN and infinities are bad input), no unknown fields."""

from pydantic import ConfigDict

STRICT = ConfigDict(strict=True, allow_inf_nan=False, extra="forbid")
