"""Operations endpoints: health, readiness, metrics and the staff dashboard."""

import logging

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ops import stats
from ops.access import has_metrics_token, is_staff
from ops.health import log_readiness, readiness
from ops.metrics import registry

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request):
    """Alive: the process answers. Nothing else is checked, so a restart loop cannot start here."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    """Ready: the database, Redis and a worker answer, and no queue waits for its models; 503 names what does not."""
    results = readiness()
    failing = {name: problem for name, problem in results.items() if problem}
    log_readiness(failing)
    # Exception details name hosts, ports and database users: for operators only (and the log).
    detailed = has_metrics_token(request) or is_staff(request)
    checks = {
        name: "ok" if not problem else problem if detailed else problem.split(":", 1)[0]
        for name, problem in results.items()
    }
    if failing:
        response = JsonResponse({"status": "unavailable", "failing": sorted(failing), "checks": checks}, status=503)
        response["Retry-After"] = "5"
        # Logged above, once per change: Django's own "Service Unavailable" line would come at every probe.
        response._has_been_logged = True
        return response
    return JsonResponse({"status": "ok", "checks": checks})


@never_cache
@require_GET
def metrics(request):
    """Prometheus text, for a scraper with METRICS_TOKEN or a staff session; a 404 for anyone else."""
    if not (has_metrics_token(request) or is_staff(request)):
        raise Http404
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


@never_cache
@require_GET
def dashboard(request):
    """The live ops dashboard; anonymous visitors are sent to log in, other non-staff get a 404."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    if not is_staff(request):
        raise Http404
    return render(request, "ops/dashboard.html", {"stats_url": reverse("ops-stats")})


@never_cache
@require_GET
def dashboard_stats(request):
    """The dashboard's figures as JSON, polled every two seconds; shared by every tab for two seconds."""
    if not is_staff(request):
        raise Http404
    return JsonResponse(stats.dashboard_shared())
