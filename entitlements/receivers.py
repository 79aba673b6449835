"""Signal receivers: thin, each parses its input and calls a service."""

from contextlib import AbstractContextManager

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.dispatch import receiver

from billing.models import StripeEvent
from billing.signals import (
    stripe_event_batch,
    stripe_event_processed,
    stripe_subscription_fetched,
)
from billing.stripe_events import BillingEvent
from entitlements import grant_batch, state_batch, stripe_sync
from entitlements.catalog import catalog_seed
from entitlements.models import Feature, Plan, PlanFeature


@receiver(stripe_event_processed, dispatch_uid="entitlements.apply_stripe_event")
def apply_stripe_event(
    sender: type[StripeEvent], billing_event: BillingEvent, **kwargs: object
) -> None:
    stripe_sync.stripe_event_apply(billing_event=billing_event)


@receiver(stripe_event_batch, dispatch_uid="entitlements.stripe_event_batch")
def batch_states(sender: type[StripeEvent], **kwargs: object) -> AbstractContextManager[None]:
    # billing applies a batch of events in one transaction: its subscription states are
    # written together, in one upsert, when it ends.
    return state_batch.states_batched()


@receiver(stripe_event_batch, dispatch_uid="entitlements.stripe_event_batch_grants")
def batch_grants(sender: type[StripeEvent], **kwargs: object) -> AbstractContextManager[None]:
    # ... and the grants it creates in one INSERT, those it changes in one UPDATE.
    return grant_batch.grants_batched()


@receiver(stripe_subscription_fetched, dispatch_uid="entitlements.apply_fetched_subscription")
def apply_fetched_subscription(
    sender: type[StripeEvent], billing_event: BillingEvent, **kwargs: object
) -> None:
    stripe_sync.subscription_fetched_apply(billing_event=billing_event)


@receiver(post_migrate, dispatch_uid="entitlements.seed_catalog")
def seed_catalog(sender: AppConfig, app_config: AppConfig | None = None, **kwargs: object) -> None:
    # Also sent after `flush`: an emptied database gets its plans back (roles: staff/roles.py).
    if app_config is not None and app_config.label == "entitlements":
        catalog_seed(feature_model=Feature, plan_model=Plan, plan_feature_model=PlanFeature)
