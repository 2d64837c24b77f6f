"""The status condition shape shared by every netplane kind (metav1.Condition)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Condition(BaseModel):
    type: str = Field(description="Type of condition in CamelCase, e.g. Ready.")
    status: Literal["True", "False", "Unknown"] = Field(description="Status of the condition.")
    reason: str = Field(description="A one-word CamelCase reason for the last transition.")
    message: str = Field("", description="A human-readable explanation of the last transition.")
    observedGeneration: int | None = Field(None, ge=0,
                                           description="The metadata.generation this condition was set for.")
    lastTransitionTime: str = Field(description="When the condition last changed status (RFC 3339).",
                                    json_schema_extra={"format": "date-time"})
