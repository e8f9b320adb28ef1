"""The jobs API. Views parse, call one service or selector, and shape the answer."""

from __future__ import annotations

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inference.api.serializers import JobCreateInput, job_representation
from inference.models import JobClient
from inference.selectors import job_get_for_user
from inference.services.jobs import job_cancel, job_submit


class JobListCreateView(APIView):
    def post(self, request: Request) -> Response:
        payload = JobCreateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        job = job_submit(
            user=request.user,
            model=payload.validated_data["model"],
            input=payload.validated_data["input"],
            client=JobClient.REST,
            idempotency_key=request.headers.get("Idempotency-Key") or None,
        )
        return Response(job_representation(job, request), status=status.HTTP_202_ACCEPTED)


class JobDetailView(APIView):
    def get(self, request: Request, job_id: str) -> Response:
        job = job_get_for_user(user=request.user, job_id=job_id)
        return Response(job_representation(job, request))


class JobCancelView(APIView):
    def post(self, request: Request, job_id: str) -> Response:
        job = job_cancel(job=job_get_for_user(user=request.user, job_id=job_id))
        return Response(job_representation(job, request), status=status.HTTP_202_ACCEPTED)
