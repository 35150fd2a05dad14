"""Audit console pages, mounted at /console/audit/."""

from django.urls import URLPattern, URLResolver, path

from audit import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.event_list, name="audit-list"),
    path("<int:event_id>/", views.event_detail, name="audit-detail"),
    path("export.csv", views.export_csv, name="audit-export-csv"),
    path("export.jsonl", views.export_jsonl, name="audit-export-jsonl"),
    path("token/<str:jti>/", views.token_lookup, name="audit-token"),
    path("token/<str:jti>/usage/", views.token_usage, name="audit-token-usage"),
    path("session/<str:session_id>/", views.session_lookup, name="audit-session"),
]
