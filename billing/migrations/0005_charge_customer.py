"""ChargeCustomer comes from entitlements (entitlements/migrations/0006 renamed its table to
billing_chargecustomer): the model enters billing's state, the database is already right."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0004_event_outbox'),
        ('entitlements', '0006_charge_customer_to_billing'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='ChargeCustomer',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('stripe_charge_id', models.CharField(max_length=255, unique=True)),
                        ('stripe_customer_id', models.CharField(max_length=255)),
                        ('learnt_from', models.CharField(max_length=255)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                    ],
                ),
            ],
        ),
    ]
