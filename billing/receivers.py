"""billing's signal receivers: thin, each calls a service."""

from django.db.models import Model


def forget_cached_endpoint_secrets(sender: type[Model], **kwargs: object) -> None:
    """post_save/post_delete of an endpoint or secret: this process stops using the old set now."""
    from billing.selectors import endpoint_auth_forget

    endpoint_auth_forget()
