from django.urls import path

from inference import consumers

websocket_urlpatterns = [
    path("ws/jobs/", consumers.UserJobsConsumer.as_asgi()),
    path("ws/jobs/<uuid:job_id>/", consumers.JobStreamConsumer.as_asgi()),
]
