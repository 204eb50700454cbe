"""The Alertmanager webhook payload, version 4, as Alertmanager sends it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class WebhookAlert(BaseModel):
    """One alert of the payload; `fingerprint` + `startsAt` identify one firing."""

    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime  # noqa: N815 - Alertmanager's field name
    endsAt: datetime | None = None  # noqa: N815
    generatorURL: str = ""  # noqa: N815
    fingerprint: str = Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")

    @model_validator(mode="after")
    def _encodable(self) -> WebhookAlert:
        # JSON allows lone surrogates ("\ud800"); they cannot be stored as UTF-8 text.
        for mapping in (self.labels, self.annotations):
            for key, value in mapping.items():
                try:
                    key.encode("utf-8")
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError(f"label or annotation {key!r} is not valid UTF-8 text") from None
        return self


class WebhookPayload(BaseModel):
    """The body Alertmanager POSTs to a webhook receiver."""

    model_config = ConfigDict(extra="ignore")

    version: Literal["4"]
    groupKey: str = ""  # noqa: N815
    truncatedAlerts: int = 0  # noqa: N815
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonAnnotations: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    externalURL: str = ""  # noqa: N815
    alerts: list[WebhookAlert]


def oversized_labels(payload: WebhookPayload, max_length: int, max_alerts: int) -> str | None:
    """A sentence naming the first label or annotation over the limits, or None when all fit."""
    if len(payload.alerts) > max_alerts:
        return f"too many alerts in one payload ({len(payload.alerts)} > {max_alerts})"
    for i, alert in enumerate(payload.alerts):
        for kind, mapping in (("label", alert.labels), ("annotation", alert.annotations)):
            for key, value in mapping.items():
                if len(key) > max_length or len(value) > max_length:
                    return (
                        f"alerts[{i}] {kind} {key[:64]!r} is longer than {max_length} characters; "
                        "shorten it in the alerting rule"
                    )
    return None
