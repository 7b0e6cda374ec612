"""A stored job as its owner sees it: archived outputs get fresh presigned download URLs."""

from __future__ import annotations

from shared.models.job import JobPage, JobRecord, JobView, OutputView
from shared.repository.jobs import Page
from shared.runtime import Runtime


def job_view(rt: Runtime, job: JobRecord) -> JobView:
    outputs = []
    if job.outputs:
        rt.require("bucket_name")
        now = rt.clock()
        for output in job.outputs:
            link = rt.archive_store.presigned_download(output.key, expires_in=rt.settings.presign_ttl_seconds, now=now)
            outputs.append(
                OutputView(
                    url=link.url,
                    expires_at=link.expires_at,
                    bytes=output.bytes,
                    sha256=output.sha256,
                    content_type=output.content_type,
                )
            )
    return JobView(**job.public_fields(), outputs=outputs)


def page_view(rt: Runtime, page: Page) -> JobPage:
    return JobPage(items=[job_view(rt, job) for job in page.items], next_cursor=page.next_cursor)
