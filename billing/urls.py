from django.urls import path

from billing import views

urlpatterns = [
    path("stripe/webhook/<uuid:uuid>/", views.stripe_webhook, name="stripe-webhook"),
]
