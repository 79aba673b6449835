"""Checkpoints in an S3-compatible bucket (audit/checkpoint_bucket.py), against a real HTTP S3
server started by the test (moto's server, a throwaway like the test PostgreSQL): written once
with a conditional PUT, read back by `audit_verify --against s3://bucket/prefix`."""

import json
import uuid

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from moto.server import ThreadedMotoServer

from audit import chain, signing
from audit.checkpoint_files import CheckpointConflict, checkpoint_file_write
from audit.services import audit_checkpoint_sign
from tests.audit.attacks import rewrite_from
from tests.servers import free_port


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, settings, monkeypatch):
    """A fresh bucket; boto3 finds the credentials in its standard environment variables."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "tollgate-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "tollgate-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    name = f"tollgate-checkpoints-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=name)
    settings.AUDIT_CHECKPOINT_BUCKET = f"{name}/trail"
    settings.AUDIT_CHECKPOINT_BUCKET_ENDPOINT_URL = s3_endpoint
    return client, name


@pytest.fixture
def exported(trail, bucket, django_capture_on_commit_callbacks):
    """Rows 1-6 and a checkpoint of them written to the bucket, then rows 8-9."""
    trail(6)
    with django_capture_on_commit_callbacks(execute=True):
        checkpoint = audit_checkpoint_sign()
    trail(2)
    return checkpoint


def objects(client, name) -> dict[str, bytes]:
    listed = client.list_objects_v2(Bucket=name).get("Contents", [])
    return {
        item["Key"]: client.get_object(Bucket=name, Key=item["Key"])["Body"].read()
        for item in listed
    }


def verify_against(location: str) -> None:
    call_command("audit_verify", "--against", location, "--no-record", verbosity=0)


def test_each_checkpoint_is_written_once_to_the_bucket(exported, bucket):
    client, name = bucket
    checkpoint = exported
    key = f"trail/checkpoint-{checkpoint.sequence:012d}-{checkpoint.pk}.json"
    stored = objects(client, name)
    assert list(stored) == [key]
    document = json.loads(stored[key])
    assert document == {
        "id": checkpoint.pk, "sequence": 6, "hash": checkpoint.hash, "root": checkpoint.root,
        "created_at": chain.format_time(checkpoint.created_at), "algorithm": "Ed25519",
        "signature": checkpoint.signature, "consistency": [],
    }  # fmt: skip
    location = f"s3://{name}/trail"
    checkpoint_file_write(checkpoint, location)  # the same bytes again: a harmless retry
    checkpoint.signature = "00" * 64
    with pytest.raises(CheckpointConflict, match="already exists with different content"):
        checkpoint_file_write(checkpoint, location)  # the bucket refused the overwrite (412)
    assert objects(client, name) == stored
    verify_against(location)


@pytest.mark.parametrize("first", [1, 6])
def test_a_rewritten_and_resigned_chain_is_caught_against_the_bucket(
    exported, bucket, tamper, first
):
    _, name = bucket
    rewrite_from(first, tamper)
    with pytest.raises(CommandError, match="checkpoint differs from its copy outside"):
        verify_against(f"s3://{name}/trail")


def test_a_checkpoint_deleted_from_the_database_is_caught_against_the_bucket(
    exported, bucket, tamper
):
    _, name = bucket
    tamper(("DELETE FROM audit_auditcheckpoint", []))
    with pytest.raises(CommandError, match="missing from it"):
        verify_against(f"s3://{name}/trail")


def test_a_failing_directory_does_not_stop_the_bucket_copy(
    trail, bucket, settings, tmp_path, django_capture_on_commit_callbacks
):
    client, name = bucket
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.AUDIT_CHECKPOINT_DIR = str(blocker)
    trail(3)
    with pytest.raises(OSError), django_capture_on_commit_callbacks(execute=True):
        audit_checkpoint_sign()
    (key,) = objects(client, name)
    assert key.startswith("trail/checkpoint-000000000003-")


def test_the_witness_cosigns_in_the_bucket(exported, bucket, tmp_path):
    """audit_witness and audit_verify --witness-public-key on s3://bucket/prefix."""
    client, name = bucket
    witness_key = tmp_path / "witness.key"
    witness_key.write_text(Ed25519PrivateKey.generate().private_bytes_raw().hex())
    app_key = tmp_path / "app.pem"
    app_key.write_text(signing.public_key_pem())
    witness_public = tmp_path / "witness.pem"
    with witness_public.open("w") as out:
        call_command("audit_witness", "--print-public-key", "--key-file", witness_key, stdout=out)
    location = f"s3://{name}/trail"
    arguments = ["--against", location, "--witness-public-key", witness_public, "--no-record"]
    with pytest.raises(CommandError, match="not cosigned by the witness"):
        call_command("audit_verify", *arguments, verbosity=0)
    call_command("audit_witness", location, "--public-key", app_key, "--key-file", witness_key)
    assert sum(key.startswith("trail/cosignature-") for key in objects(client, name)) == 1
    call_command("audit_verify", *arguments, verbosity=0)
