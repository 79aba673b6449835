"""ChargeCustomer moves to billing, rows and all: its table is renamed, nothing is copied.

billing reads it to serialize a dispute on its charge's customer; billing never imports
entitlements, so the table is billing's now (billing/migrations/0005_charge_customer.py takes
the model into billing's state)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('entitlements', '0005_grant_request'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterModelTable(name='ChargeCustomer', table='billing_chargecustomer'),
            ],
            state_operations=[
                migrations.DeleteModel(name='ChargeCustomer'),
            ],
        ),
    ]
