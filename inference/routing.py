"""Websocket routes (the job streams arrive with the streaming work)."""

websocket_urlpatterns: list = []
