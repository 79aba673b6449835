"""Checkpoint documents in an S3-compatible bucket, written once (the CheckpointStore of
audit.checkpoint_files).

A conditional PUT (`If-None-Match: *`) creates an object only where none exists: the bucket
refuses the overwrite itself (412), so two writers, or a retry racing its first attempt, can
never replace a document. After a refusal the existing object is read: the same bytes are a
retry that already succeeded; different bytes are a conflict, logged and raised. Turn on S3
Object Lock (compliance mode) on the bucket as well (docs/deploy.md): If-None-Match stops the
application from overwriting, Object Lock stops anyone holding the bucket's keys from deleting.

Credentials and region come from boto3's standard chain (AWS_ACCESS_KEY_ID, AWS_PROFILE,
instance roles, ...); AUDIT_CHECKPOINT_BUCKET_ENDPOINT_URL points at a non-AWS server.
"""

from urllib.parse import urlsplit

import boto3
from botocore.exceptions import ClientError
from django.conf import settings

from audit.checkpoint_files import conflict

_REFUSED_OVERWRITE = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


def bucket_url(bucket: str) -> str:
    """AUDIT_CHECKPOINT_BUCKET (`name` or `name/prefix`) as the location `s3://name/prefix`."""
    return bucket if bucket.startswith("s3://") else f"s3://{bucket}"


class BucketStore:
    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None):
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None)

    @classmethod
    def from_url(cls, url: str) -> "BucketStore":
        parts = urlsplit(url)
        if not parts.netloc:
            raise ValueError(f"{url!r}: expected s3://bucket or s3://bucket/prefix")
        endpoint = getattr(settings, "AUDIT_CHECKPOINT_BUCKET_ENDPOINT_URL", "")
        return cls(parts.netloc, parts.path, endpoint_url=endpoint)

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def put(self, name: str, text: str) -> None:
        body = text.encode()
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.prefix + name,
                Body=body,
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in _REFUSED_OVERWRITE:
                raise
            if self._get_bytes(name) == body:
                return
            raise conflict(self.location, name) from error

    def names(self, prefix: str) -> list[str]:
        found = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix) :]
                if "/" not in name and name.endswith(".json"):
                    found.append(name)
        return sorted(found)

    def _get_bytes(self, name: str) -> bytes:
        answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)
        body: bytes = answer["Body"].read()
        return body

    def get(self, name: str) -> str:
        return self._get_bytes(name).decode()
