from django.urls import path, re_path

from inference import consumers

websocket_urlpatterns = [
    path("ws/jobs/", consumers.UserJobsConsumer.as_asgi()),
    path("ws/jobs/<uuid:job_id>/", consumers.JobStreamConsumer.as_asgi()),
    # Anything else (a job id that is not one, a mistyped path) is closed with 4404: without a
    # route, Channels raises and daphne answers the handshake with a bare 500.
    re_path(r"", consumers.NoSuchSocketConsumer.as_asgi()),
]
