"""Request types for the type checker: views that only signed-in users reach.

Django and DRF type `request.user` as a user or AnonymousUser. Behind the admin's login, or a
DRF permission that requires authentication, it is always a user; annotating such views with
these types says so once, instead of narrowing in every view. Nothing here runs.
"""

from django.contrib.auth.models import User
from django.http import HttpRequest
from rest_framework.request import Request


class AuthenticatedHttpRequest(HttpRequest):
    user: User


class AuthenticatedRequest(Request):
    user: User
