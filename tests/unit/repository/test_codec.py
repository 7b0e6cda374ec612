"""Numbers in stored models: every float a request may carry is stored, as DynamoDB can hold it."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from shared.models.request import JobRequest
from shared.repository.codec import from_attributes, model_to_attributes
from shared.repository.jobs import JobRepository
from tests.fixtures.jobs import build_job


class Measured(BaseModel):
    value: float


@pytest.mark.parametrize(
    ("value", "stored"),
    [(0.35, "0.35"), (1.0, "1.0"), (0.0, "0.0"), (3.3617718986044146e-198, "0"), (-1e-131, "0"), (1e-130, "1E-130")],
)
def test_floats_are_stored_as_dynamodb_numbers(value: float, stored: str) -> None:
    assert model_to_attributes(Measured(value=value)) == {"value": {"N": stored}}


def test_a_float_too_large_for_dynamodb_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="cannot be stored as a DynamoDB number"):
        model_to_attributes(Measured(value=1e200))


def test_stored_numbers_read_back_as_floats() -> None:
    assert from_attributes({"value": {"N": "0.35"}, "count": {"N": "3"}}) == {"value": 0.35, "count": 3}
    assert Measured.model_validate(from_attributes(model_to_attributes(Measured(value=0.35)))).value == 0.35


def test_a_request_with_a_vanishingly_small_cfg_scale_is_recorded(jobs: JobRepository) -> None:
    job = build_job(request=JobRequest(prompt="tiny", cfg_scale=3.3617718986044146e-198))
    jobs.create(job)
    stored = jobs.get(job.id)
    assert stored is not None
    assert stored.request.cfg_scale == 0.0
