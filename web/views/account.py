"""Signing in and out, and changing one's password: Django's own views, with the admin's
throttling (django-axes counts failed sign-ins here as it does on the admin's login page, and
answers a locked-out address with 429)."""

from __future__ import annotations

from django.contrib.auth import views as auth
from django.urls import reverse_lazy

from web.pages import secured_view


class SignIn(auth.LoginView):
    template_name = "web/sign_in.html"
    redirect_authenticated_user = True

    def get_success_url(self) -> str:
        """Where `next` leads, unless that is this page (signed in already, Django would call
        it a loop and fail): then the member's files."""
        target = super().get_success_url()
        if target.split("?")[0] == self.request.path:
            return self.get_default_redirect_url()
        return target


sign_in = secured_view(SignIn.as_view())
# The admin's sign-out keeps its own page; the web app's leads back to its sign-in.
sign_out = secured_view(auth.LogoutView.as_view(next_page="web:sign-in"))
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
