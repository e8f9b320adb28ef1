from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ops.health import readiness


@never_cache
@require_GET
def healthz(request):
    """Alive: the process answers. Nothing else is checked, so a restart loop cannot start here."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    """Ready: the database, Redis and at least one worker answer; 503 names what does not."""
    results = readiness()
    failing = {name: problem for name, problem in results.items() if problem}
    checks = {name: (problem if problem else "ok") for name, problem in results.items()}
    if failing:
        response = JsonResponse({"status": "unavailable", "failing": sorted(failing), "checks": checks}, status=503)
        response["Retry-After"] = "5"
        return response
    return JsonResponse({"status": "ok", "checks": checks})
