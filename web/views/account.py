"""Signing in and out, and changing one's password: Django's own views, with the admin's
throttling (django-axes counts failed sign-ins here as it does on the admin's login page, and
answers a locked-out address with 429)."""

from __future__ import annotations

from django.contrib.auth import views as auth
from django.urls import reverse_lazy

from web.pages import secured_view

sign_in = secured_view(
    auth.LoginView.as_view(template_name="web/sign_in.html", redirect_authenticated_user=True)
)
sign_out = secured_view(auth.LogoutView.as_view())
password_change = secured_view(
    auth.PasswordChangeView.as_view(
        template_name="web/password.html",
        success_url=reverse_lazy("web:password-changed"),
        extra_context={"nav": "password"},
    )
)
password_changed = secured_view(
    auth.PasswordChangeDoneView.as_view(template_name="web/password_changed.html")
)
