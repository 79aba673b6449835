from django.urls import path

from entitlements import views

urlpatterns = [
    path("api/entitlements/", views.EntitlementListView.as_view(), name="entitlements-list"),
    path("api/entitlements/grant/", views.GrantView.as_view(), name="entitlements-grant"),
    path("api/entitlements/revoke/", views.RevokeView.as_view(), name="entitlements-revoke"),
]
