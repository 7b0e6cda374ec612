"""An `AWS::Lambda::EventSourceMapping`'s properties, as the template gives them after resolution.

Every property the drivers act on is modelled; a property they would silently ignore (tumbling windows,
self-managed Kafka, ...) is rejected, so a template change that local mode cannot honour fails at start-up.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_pascal

from local.aws.eventsources.filters import FilterSet

INFINITE = -1
STREAM_BATCH_DEFAULT = 100
QUEUE_BATCH_DEFAULT = 10
QUEUE_BATCH_WITHOUT_WINDOW_MAX = 10


class MappingConfigError(ValueError):
    """A mapping the local drivers cannot run as deployed; the message names the mapping and the property."""


class SourceKind(StrEnum):
    DYNAMODB_STREAM = "dynamodb-stream"
    SQS = "sqs"


class _Properties(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="forbid", frozen=True)


class FilterEntry(_Properties):
    pattern: str


class FilterCriteria(_Properties):
    filters: list[FilterEntry] = Field(default_factory=list)


class ScalingConfig(_Properties):
    maximum_concurrency: int | None = Field(default=None, ge=2, le=1000)


class OnFailure(_Properties):
    destination: str


class DestinationConfig(_Properties):
    on_failure: OnFailure | None = None


class MappingProperties(_Properties):
    function_name: str
    event_source_arn: str
    enabled: bool = True
    batch_size: int | None = Field(default=None, ge=1, le=10_000)
    maximum_batching_window_in_seconds: int = Field(default=0, ge=0, le=300)
    starting_position: Literal["TRIM_HORIZON", "LATEST"] | None = None
    filter_criteria: FilterCriteria | None = None
    function_response_types: list[Literal["ReportBatchItemFailures"]] = Field(default_factory=list)
    bisect_batch_on_function_error: bool | None = None
    maximum_retry_attempts: int | None = Field(default=None, ge=-1, le=10_000)
    maximum_record_age_in_seconds: int | None = Field(default=None, ge=-1, le=604_800)
    destination_config: DestinationConfig | None = None
    parallelization_factor: int | None = Field(default=None, ge=1, le=10)
    # An SQS source's cap on concurrent invocations (queues.py runs up to a few at once).
    scaling_config: ScalingConfig | None = None
    # Accepted, nothing to emulate: metrics, tags.
    metrics_config: dict[str, Any] | None = None
    tags: list[dict[str, Any]] | None = None

    @property
    def source_kind(self) -> SourceKind:
        service = self.event_source_arn.split(":")[2] if self.event_source_arn.count(":") >= 5 else ""
        if service == "dynamodb" and "/stream/" in self.event_source_arn:
            return SourceKind.DYNAMODB_STREAM
        if service == "sqs":
            return SourceKind.SQS
        raise ValueError(f"EventSourceArn {self.event_source_arn!r}: only DynamoDB streams and SQS queues are driven")

    @model_validator(mode="after")
    def _fits_source(self) -> MappingProperties:
        kind = self.source_kind
        if kind is SourceKind.SQS:
            stream_only = {
                "StartingPosition": self.starting_position,
                "BisectBatchOnFunctionError": self.bisect_batch_on_function_error,
                "MaximumRetryAttempts": self.maximum_retry_attempts,
                "MaximumRecordAgeInSeconds": self.maximum_record_age_in_seconds,
                "DestinationConfig": self.destination_config,
                "ParallelizationFactor": self.parallelization_factor,
            }
            given = sorted(name for name, value in stream_only.items() if value is not None)
            if given:
                raise ValueError(f"{', '.join(given)} apply to streams, not to an SQS source")
            if (self.batch_size or QUEUE_BATCH_DEFAULT) > QUEUE_BATCH_WITHOUT_WINDOW_MAX and not (
                self.maximum_batching_window_in_seconds
            ):
                raise ValueError("an SQS BatchSize above 10 needs MaximumBatchingWindowInSeconds of at least 1")
        elif self.starting_position is None:
            raise ValueError("StartingPosition is required for a DynamoDB stream source")
        elif self.scaling_config is not None:
            raise ValueError("ScalingConfig applies to an SQS source, not to a stream")
        return self

    # -- effective values ----------------------------------------------------------------------

    @property
    def effective_batch_size(self) -> int:
        default = QUEUE_BATCH_DEFAULT if self.source_kind is SourceKind.SQS else STREAM_BATCH_DEFAULT
        return self.batch_size or default

    @property
    def maximum_concurrency(self) -> int | None:
        return self.scaling_config.maximum_concurrency if self.scaling_config else None

    @property
    def reports_item_failures(self) -> bool:
        return "ReportBatchItemFailures" in self.function_response_types

    @property
    def retry_attempts(self) -> int:
        return INFINITE if self.maximum_retry_attempts is None else self.maximum_retry_attempts

    @property
    def record_age_limit(self) -> int:
        return INFINITE if self.maximum_record_age_in_seconds is None else self.maximum_record_age_in_seconds

    @property
    def on_failure_destination(self) -> str | None:
        config = self.destination_config
        return config.on_failure.destination if config and config.on_failure else None

    @property
    def filters(self) -> FilterSet:
        entries = self.filter_criteria.filters if self.filter_criteria else []
        return FilterSet.of(entry.pattern for entry in entries)


def parse_mapping(name: str, properties: dict[str, Any]) -> MappingProperties:
    """Properties of mapping `name`, checked; filter patterns are compiled here so a bad one fails now."""
    try:
        parsed = MappingProperties.model_validate(properties)
        parsed.filters  # noqa: B018  (compiles every pattern: an unsupported operator fails at start-up)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'properties'}: {error['msg']}" for error in exc.errors()
        )
        raise MappingConfigError(f"event source mapping {name}: {problems}") from exc
    except ValueError as exc:
        raise MappingConfigError(f"event source mapping {name}: {exc}") from exc
    return parsed
