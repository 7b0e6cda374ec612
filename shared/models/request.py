"""The v1 job request: every field an app may send to `POST /v1/jobs`."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from shared.models.common import AspectRatio, Duration, ProviderChoice, Quality, Url
from shared.models.text import PROMPT_WHITESPACE, refuse_hidden_characters

# The key pattern admits no control character (pydantic's regex engine reads `$` as the end of the text).
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.:-]+$")]
MetadataValue = Annotated[str, StringConstraints(max_length=256), AfterValidator(refuse_hidden_characters)]

MAX_PROMPT_CHARS = 2500
MAX_METADATA_KEYS = 16

Orientation = Literal["image", "video"]
# The reference video's length Kling 2.6 motion control accepts, by where the character's orientation comes from.
REFERENCE_SECONDS: dict[Orientation, tuple[int, int]] = {"image": (3, 10), "video": (3, 30)}


def reference_seconds_allowed(orientation: Orientation) -> tuple[int, int]:
    return REFERENCE_SECONDS[orientation]


class MotionControl(BaseModel):
    """Kling 2.6 motion control: the character in `image_url` performs the motion of the video at `video_url`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_url: Url = Field(description="The character to animate (JPEG or PNG).")
    video_url: Url = Field(
        description="The reference video whose motion the character performs (MP4 or MOV): 3-10 s with "
        "character_orientation `image`, 3-30 s with `video`. The output is as long as this video."
    )
    character_orientation: Orientation = Field(
        default="image",
        description="`image`: the character keeps the image's orientation; `video`: it follows the video's.",
    )
    keep_original_sound: bool | None = Field(
        default=None, description="Keep the reference video's sound; omit for the provider's default."
    )
    video_seconds: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="Set by the relay: the reference video's length as read from its header (null when it could "
        "not be read). A value sent is replaced.",
    )


# The rules of `JobRequest._mode_rules`, in the OpenAPI document: a prompt, or motion control without what
# it cannot take (generated clients and schema-driven tests read them from there).
MODE_RULES_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"required": ["prompt"], "properties": {"prompt": {"type": "string"}, "motion_control": {"type": "null"}}},
        {
            "required": ["motion_control"],
            "properties": {
                "motion_control": {"type": "object"},
                "duration": {"const": 5},
                "aspect_ratio": {"type": "null"},
                "sound": {"const": False},
                "first_frame_url": {"type": "null"},
                "last_frame_url": {"type": "null"},
            },
        },
    ]
}


class JobRequest(BaseModel):
    """What the app asks for. Provider-specific limits are checked by the chosen adapter."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=MODE_RULES_SCHEMA)

    provider: ProviderChoice = Field(
        default="auto",
        description="`auto` picks the first configured provider that supports the request.",
    )
    prompt: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_PROMPT_CHARS)] | None
    ) = Field(default=None, description="What to generate. Required, except with motion_control where it is optional.")
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
    motion_control: MotionControl | None = Field(
        default=None,
        description="Motion control (a character image animated with a reference video's motion) instead of "
        "text- or image-to-video; not with first or last frames.",
    )
    webhook_url: Url | None = Field(default=None, description="Receives signed job events.")
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict, max_length=MAX_METADATA_KEYS, description="Echoed back on the job."
    )

    @field_validator("prompt")
    @classmethod
    def _prompt_has_text(cls, value: str | None) -> str | None:
        # Control and format characters are not whitespace to the length check, but providers see no prompt.
        if value is not None and not any(char.isprintable() and not char.isspace() for char in value):
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

    @model_validator(mode="after")
    def _mode_rules(self) -> JobRequest:
        """What every provider requires of the mode: a prompt but for motion control, and what motion control
        cannot take (its length, framing and sound come from the reference video)."""
        problems: list[tuple[str, str]] = []
        if self.motion_control is None:
            if self.prompt is None:
                problems.append(("prompt", "a prompt is required (it is optional only with motion_control)"))
        else:
            for name in ("first_frame_url", "last_frame_url"):
                if getattr(self, name) is not None:
                    problems.append((name, f"{name} cannot be combined with motion_control"))
            if self.duration != 5:
                problems.append(("duration", "motion control is as long as its reference video; omit duration"))
            if self.aspect_ratio is not None:
                problems.append(("aspect_ratio", "motion control takes its framing from the image or video"))
            if self.sound:
                problems.append(("sound", "motion control generates no audio; use motion_control.keep_original_sound"))
        if problems:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(type=PydanticCustomError("mode_rule", message), loc=(field,), input=None)
                    for field, message in problems
                ],
            )
        return self

    @property
    def mode(self) -> str:
        if self.motion_control is not None:
            return "motion-control"
        return "image-to-video" if self.first_frame_url is not None else "text-to-video"

    @property
    def prompt_text(self) -> str:
        """The prompt ("" only for a motion control request without one)."""
        return self.prompt or ""

    def fingerprint(self) -> str:
        """A stable hash of the request, to tell an idempotent retry from a different request.

        The relay's own measurement of a reference video is not part of what was asked for.
        """
        document = self.model_dump(mode="json", exclude={"motion_control": {"video_seconds"}})
        if document["motion_control"] is None:  # requests of the other modes hash as they always have
            del document["motion_control"]
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
