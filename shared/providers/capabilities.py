"""What each provider can do, and the check of a job request against it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from shared.models.common import AspectRatio, Duration, ProviderName, Quality
from shared.models.request import JobRequest


class Violation(BaseModel):
    """A field the provider cannot honour, and the rule that says so."""

    model_config = ConfigDict(frozen=True)

    field: str
    provider: ProviderName
    rule: str

    @property
    def message(self) -> str:
        return f"{self.field}: {self.provider} {self.rule}"


class MotionCapabilities(BaseModel):
    """What one provider's Kling 2.6 motion control takes (see docs/providers.md)."""

    model_config = ConfigDict(frozen=True)

    model: str  # the provider's model id for it
    qualities: tuple[Quality, ...] = ()  # empty: one unnamed tier, `quality` must be omitted
    default_quality: Quality | None = None
    keep_original_sound: bool = False  # whether the reference video's sound can be kept or dropped on request
    max_prompt_chars: int = 2500
    billing: str = ""  # how the provider charges for it


class Capabilities(BaseModel):
    """Documented abilities of one provider's Kling 2.6 API (see docs/providers.md)."""

    model_config = ConfigDict(frozen=True)

    provider: ProviderName
    durations: tuple[Duration, ...] = (5, 10)
    aspect_ratios: tuple[AspectRatio, ...] = ("16:9", "9:16", "1:1")
    aspect_ratio_with_image: bool = False  # False: image-to-video takes the image's own ratio
    sound: bool = True
    sound_requires_pro: bool = False
    qualities: tuple[Quality, ...] = ()  # empty: one unnamed tier, `quality` must be omitted
    default_quality: Quality | None = None
    text_to_video: bool = True
    first_frame: bool = True
    last_frame: bool = False
    last_frame_requires_pro: bool = False
    last_frame_excludes_sound: bool = False
    negative_prompt: bool = False
    cfg_scale: bool = False
    cfg_scale_with_image: bool = False
    max_outputs: int = 1
    max_prompt_chars: int = 2500
    prompt_optimization: bool = False
    watermark: bool = False
    callbacks: bool = False
    signed_callbacks: bool = False
    motion_control: MotionCapabilities | None = None  # None: motion control is not offered
    notes: tuple[str, ...] = ()

    def quality_for(self, request: JobRequest) -> Quality | None:
        if request.motion_control is not None and self.motion_control is not None:
            return request.quality or self.motion_control.default_quality
        return request.quality or self.default_quality

    def check(self, request: JobRequest) -> list[Violation]:
        """Every field of `request` this provider cannot honour (empty when it can take the job)."""
        found: list[tuple[str, str]] = []
        if request.motion_control is not None:
            found += self._check_motion(request)
        else:
            found += self._check_shape(request)
            found += self._check_audio_and_frames(request)
        found += self._check_options(request)
        return [Violation(field=field, provider=self.provider, rule=rule) for field, rule in found]

    def _check_motion(self, request: JobRequest) -> list[tuple[str, str]]:
        motion = self.motion_control
        if motion is None:
            return [("motion_control", "does not offer motion control")]
        found = []
        prompt = request.prompt or ""
        if len(prompt) > motion.max_prompt_chars:
            found.append(("prompt", f"accepts at most {motion.max_prompt_chars} characters (got {len(prompt)})"))
        if request.quality is not None and request.quality not in motion.qualities:
            rule = (
                f"offers motion control in quality {list(motion.qualities)}"
                if motion.qualities
                else "has a single motion control tier; omit quality"
            )
            found.append(("quality", rule))
        assert request.motion_control is not None
        if request.motion_control.keep_original_sound is not None and not motion.keep_original_sound:
            found.append(
                (
                    "motion_control.keep_original_sound",
                    "does not let the reference video's sound be chosen; omit keep_original_sound",
                )
            )
        return found

    def _check_shape(self, request: JobRequest) -> list[tuple[str, str]]:
        found = []
        image = request.first_frame_url is not None
        prompt = request.prompt_text
        if len(prompt) > self.max_prompt_chars:
            found.append(("prompt", f"accepts at most {self.max_prompt_chars} characters (got {len(prompt)})"))
        if request.duration not in self.durations:
            found.append(("duration", f"supports durations {list(self.durations)}"))
        if not image and not self.text_to_video:
            found.append(("first_frame_url", "needs a first frame (image-to-video only)"))
        if image and not self.first_frame:
            found.append(("first_frame_url", "does not support image-to-video"))
        if request.aspect_ratio is not None:
            if request.aspect_ratio not in self.aspect_ratios:
                found.append(("aspect_ratio", f"supports aspect ratios {list(self.aspect_ratios)}"))
            elif image and not self.aspect_ratio_with_image:
                found.append(("aspect_ratio", "takes the aspect ratio from the first frame; omit aspect_ratio"))
        if request.quality is not None and request.quality not in self.qualities:
            rule = (
                f"offers quality {list(self.qualities)}"
                if self.qualities
                else "has a single quality tier; omit quality"
            )
            found.append(("quality", rule))
        return found

    def _check_audio_and_frames(self, request: JobRequest) -> list[tuple[str, str]]:
        found = []
        quality = self.quality_for(request)
        if request.sound and not self.sound:
            found.append(("sound", "does not generate audio"))
        elif request.sound and self.sound_requires_pro and quality != "pro":
            found.append(("sound", "generates audio only with quality=pro"))
        if request.last_frame_url is None:
            return found
        if not self.last_frame:
            found.append(("last_frame_url", "does not support a last frame"))
            return found
        if self.last_frame_requires_pro and quality != "pro":
            found.append(("last_frame_url", "supports a last frame only with quality=pro"))
        if self.last_frame_excludes_sound and request.sound:
            found.append(("last_frame_url", "cannot combine a last frame with sound"))
        return found

    def _check_options(self, request: JobRequest) -> list[tuple[str, str]]:
        found = []
        if request.motion_control is not None:
            return _motion_options(request)
        if request.negative_prompt and not self.negative_prompt:
            found.append(("negative_prompt", "does not support a negative prompt"))
        if request.cfg_scale is not None and not self.cfg_scale:
            found.append(("cfg_scale", "does not support cfg_scale"))
        elif request.cfg_scale is not None and request.first_frame_url is not None and not self.cfg_scale_with_image:
            found.append(("cfg_scale", "supports cfg_scale for text-to-video only"))
        if request.num_outputs > self.max_outputs:
            found.append(("num_outputs", f"makes at most {self.max_outputs} output(s) per job"))
        if request.prompt_optimization and not self.prompt_optimization:
            found.append(("prompt_optimization", "does not offer prompt optimization"))
        if request.watermark is not None and not self.watermark:
            found.append(("watermark", "does not let the watermark be chosen; omit watermark"))
        return found


def _motion_options(request: JobRequest) -> list[tuple[str, str]]:
    """None of the three motion control APIs takes these (their documented fields are the image, the video,
    the orientation, the sound, the tier and an optional prompt)."""
    found = []
    for field, value in (
        ("negative_prompt", request.negative_prompt),
        ("cfg_scale", request.cfg_scale),
        ("watermark", request.watermark),
    ):
        if value not in (None, ""):
            found.append((field, f"does not take {field} with motion control"))
    if request.num_outputs > 1:
        found.append(("num_outputs", "makes one video per motion control job"))
    if request.prompt_optimization:
        found.append(("prompt_optimization", "does not offer prompt optimization"))
    return found
