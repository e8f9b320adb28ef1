"""The jobs API. Views parse, call one service or selector, and shape the answer.

Creating a job is async (it may wait, with `Prefer: wait=N`); reading and
canceling are plain DRF views.
"""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inference.api.asyncview import AsyncAPIView, authenticates_itself, run_db
from inference.api.idempotency import idempotency_key
from inference.api.pagination import page
from inference.api.schema import IDEMPOTENCY_KEY, JOB_ID_HEADER, RETRY_AFTER, WRITE, errors
from inference.api.serializers import (
    JobCreateInput,
    JobListFilters,
    JobListOutput,
    JobOutput,
    job_representation,
    job_urls,
    query_data,
    validated,
)
from inference.api.sse import event_stream_response, follow_events
from inference.api.waiting import job_wait_finished, preferred_wait
from inference.errors import InvalidJobInput
from inference.models import Job, JobClient
from inference.selectors import job_get_for_user, jobs_for_user
from inference.services.admission import job_create
from inference.services.jobs import job_cancel
from webhooks.services import WebhookRequest

PREFER = OpenApiParameter(
    "Prefer",
    str,
    OpenApiParameter.HEADER,
    description="`wait=N`: answer when the job ends, if it ends within N seconds (at most 60).",
    pattern=r"^wait=\d{1,2}$",
)
PREFERENCE_APPLIED = OpenApiParameter(
    "Preference-Applied", str, OpenApiParameter.HEADER, response=[200, 202], description="`wait=N` when it waited."
)
STREAMED = (
    "With `stream: true`: the job's events as they come (`id: <seq>`, `event: <type>`, "
    "`data: {seq, type, attempt, data}`, ending with `done`), as GET /api/v1/jobs/{id}/events sends them. "
    "`Location` and `X-Djinn-Job-Id` name the job; after a dropped connection, resume on its events URL "
    "with `Last-Event-ID`."
)
RETRY_AFTER_HEADER = OpenApiParameter(
    "Retry-After", int, OpenApiParameter.HEADER, response=[429, 503], description=RETRY_AFTER[429]
)


def _submit(request: Request) -> tuple[bool, Job]:
    """Validate and create the job; also whether its events were asked for instead of the job."""
    payload = validated(JobCreateInput(data=request.data))
    hook = payload.get("webhook")
    webhook = WebhookRequest(url=hook["url"], events=tuple(hook["events"])) if hook else None
    try:
        job = job_create(
            user=request.user,
            model=payload["model"],
            input=payload["input"],
            client=JobClient.REST,
            idempotency_key=idempotency_key(request),
            webhook=webhook,
        )
    except InvalidJobInput as exc:
        raise exc.within("input") from None  # the body's `input`, as `webhook.url` names the body's webhook
    return payload["stream"], job


def _streamed(job: Job, request: Request) -> StreamingHttpResponse:
    response = event_stream_response(follow_events(job.id))
    response["Location"] = job_urls(job.id, request)["self"]
    response[JOB_ID_HEADER] = str(job.id)
    return response


class JobListCreateView(AsyncAPIView):
    @extend_schema(
        operation_id="jobs_create",
        summary="Submit a job",
        description=STREAMED,
        request=JobCreateInput,
        parameters=[IDEMPOTENCY_KEY, PREFER, PREFERENCE_APPLIED, RETRY_AFTER_HEADER],
        responses={
            202: OpenApiResponse(JobOutput, description="Queued; follow it at urls.events or urls.websocket."),
            (200, "application/json"): OpenApiResponse(
                JobOutput, description="Finished within the `Prefer: wait=N` it asked for."
            ),
            (200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, description=STREAMED),
            **errors(*WRITE, 404, 409, 422, 429, 503),
        },
        tags=["jobs"],
    )
    @authenticates_itself
    async def post(self, request: Request) -> Response | StreamingHttpResponse:
        streamed, job = await self.run_db_authenticated(_submit, request)
        if streamed:
            return _streamed(job, request)  # `Prefer: wait` has nothing to add: every event comes as it happens
        wait = preferred_wait(request.headers.get("Prefer"))
        headers = {}
        if wait is not None:
            headers["Preference-Applied"] = f"wait={wait}"
            if not job.is_finished and await job_wait_finished(job_id=job.id, timeout=wait):
                job = await run_db(job_get_for_user, user=request.user, job_id=job.id)
        code = status.HTTP_200_OK if job.is_finished else status.HTTP_202_ACCEPTED
        return Response(job_representation(job, request), status=code, headers=headers)

    @extend_schema(
        operation_id="jobs_list",
        summary="List your jobs, newest first",
        parameters=[JobListFilters],
        responses={200: JobListOutput, **errors(400, 401, 403)},
        tags=["jobs"],
    )
    async def get(self, request: Request) -> Response:
        return await run_db(self._list, request)

    def _list(self, request: Request) -> Response:
        params = validated(JobListFilters(data=query_data(request, repeatable=("status",))))
        jobs = jobs_for_user(user=request.user)
        if params.get("status"):
            jobs = jobs.filter(status__in=params["status"])
        if params.get("model"):
            jobs = jobs.filter(model__slug=params["model"])
        if params.get("created_after"):
            jobs = jobs.filter(created_at__gte=params["created_after"])
        if params.get("created_before"):
            jobs = jobs.filter(created_at__lt=params["created_before"])
        if params.get("q"):
            jobs = jobs.filter(input_text__icontains=params["q"])
        result = page(jobs, cursor=params.get("cursor"), limit=params["limit"], scope="jobs")
        return Response(
            {
                "object": "list",
                "data": [job_representation(job, request) for job in result["rows"]],
                "has_more": result["has_more"],
                "next_cursor": result["next_cursor"],
            }
        )


class JobDetailView(APIView):
    @extend_schema(
        operation_id="jobs_retrieve",
        summary="Get a job",
        responses={200: JobOutput, **errors(401, 403, 404)},
        tags=["jobs"],
    )
    def get(self, request: Request, job_id: str) -> Response:
        job = job_get_for_user(user=request.user, job_id=job_id)
        return Response(job_representation(job, request))


class JobCancelView(APIView):
    @extend_schema(
        operation_id="jobs_cancel",
        summary="Cancel a job",
        description="A queued job is canceled at once, a running one between two chunks; a finished one is unchanged.",
        request=None,
        responses={202: JobOutput, **errors(401, 403, 404)},
        tags=["jobs"],
    )
    def post(self, request: Request, job_id: str) -> Response:
        job = job_cancel(job=job_get_for_user(user=request.user, job_id=job_id))
        return Response(job_representation(job, request), status=status.HTTP_202_ACCEPTED)
