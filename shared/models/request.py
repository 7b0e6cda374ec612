"""The v1 job request: every field an app may send to `POST /v1/jobs`."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from shared.models.common import AspectRatio, Duration, ProviderChoice, Quality, Url
from shared.models.text import PROMPT_WHITESPACE, refuse_hidden_characters

# The key pattern admits no control character (pydantic's regex engine reads `$` as the end of the text).
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.:-]+$")]
MetadataValue = Annotated[str, StringConstraints(max_length=256), AfterValidator(refuse_hidden_characters)]

MAX_PROMPT_CHARS = 2500
MAX_METADATA_KEYS = 16


class JobRequest(BaseModel):
    """What the app asks for. Provider-specific limits are checked by the chosen adapter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: ProviderChoice = Field(
        default="auto",
        description="`auto` picks the first configured provider that supports the request.",
    )
    prompt: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_PROMPT_CHARS)]
    negative_prompt: Annotated[str, StringConstraints(max_length=MAX_PROMPT_CHARS)] | None = None
    duration: Duration = Field(default=5, description="Seconds of video.")
    aspect_ratio: AspectRatio | None = Field(
        default=None,
        description="Omit for the default: 16:9 for text-to-video, the first frame's own ratio for image-to-video.",
    )
    sound: bool = Field(default=False, description="Native audio.")
    quality: Quality | None = Field(default=None, description="Omit for the provider's only or standard tier.")
    first_frame_url: Url | None = Field(default=None, description="Image-to-video: the first frame.")
    last_frame_url: Url | None = Field(default=None, description="The last frame; needs a first frame.")
    cfg_scale: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    num_outputs: int = Field(default=1, ge=1, le=4)
    prompt_optimization: bool = Field(default=False, description="Provider-side prompt rewriting.")
    watermark: bool | None = Field(default=None, description="Omit for the provider's default.")
    webhook_url: Url | None = Field(default=None, description="Receives signed job events.")
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict, max_length=MAX_METADATA_KEYS, description="Echoed back on the job."
    )

    @field_validator("prompt")
    @classmethod
    def _prompt_has_text(cls, value: str) -> str:
        # Control and format characters are not whitespace to the length check, but providers see no prompt.
        if not any(char.isprintable() and not char.isspace() for char in value):
            raise ValueError("the prompt must contain visible text")
        return value

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _no_hidden_characters(cls, value: str | None) -> str | None:
        return None if value is None else refuse_hidden_characters(value, allowed=PROMPT_WHITESPACE)

    @field_validator("last_frame_url")
    @classmethod
    def _last_frame_needs_first(cls, value: HttpUrl | None, info: ValidationInfo) -> HttpUrl | None:
        if value is not None and info.data.get("first_frame_url") is None:
            raise ValueError("a last frame needs first_frame_url")
        return value

    @property
    def mode(self) -> str:
        return "image-to-video" if self.first_frame_url is not None else "text-to-video"

    def fingerprint(self) -> str:
        """A stable hash of the request, to tell an idempotent retry from a different request."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
