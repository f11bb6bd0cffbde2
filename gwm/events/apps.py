from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "gwm.events"
    label = "events"
    verbose_name = "Changes and events"
