"""A stored job as its owner sees it: archived outputs get fresh presigned download URLs."""

from __future__ import annotations

from datetime import timedelta

from shared.models.job import JobPage, JobRecord, JobView, OutputView
from shared.repository.jobs import Page
from shared.runtime import Runtime


def job_view(rt: Runtime, job: JobRecord) -> JobView:
    outputs = []
    if job.outputs:
        rt.require("bucket_name")
        ttl = rt.settings.presign_ttl_seconds
        expires_at = rt.clock() + timedelta(seconds=ttl)
        for output in job.outputs:
            url = rt.archive_store.presigned_download(output.key, expires_in=ttl)
            outputs.append(
                OutputView(
                    url=url,
                    expires_at=expires_at,
                    bytes=output.bytes,
                    sha256=output.sha256,
                    content_type=output.content_type,
                )
            )
    return JobView(**job.public_fields(), outputs=outputs)


def page_view(rt: Runtime, page: Page) -> JobPage:
    return JobPage(items=[job_view(rt, job) for job in page.items], next_cursor=page.next_cursor)
