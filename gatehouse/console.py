"""Console landing page."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from gatehouse.permissions import console_reader_required


@console_reader_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "console/dashboard.html")
