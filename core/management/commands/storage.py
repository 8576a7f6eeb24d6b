"""``manage.py storage``: where this process keeps its data, and whether it works.

    manage.py storage                  # the backend, its location, a write/read/delete probe
    manage.py storage --create-bucket  # on a bucket: create it first when it is missing

Exit status 1 when the probe fails, so a deployment script can stop before serving.
"""

import uuid

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core import objectstore


class Command(BaseCommand):
    help = "Show the data storage (local folder or S3 bucket) and check it can write and read."

    def add_arguments(self, parser):
        parser.add_argument(
            "--create-bucket",
            action="store_true",
            help="On S3: create the bucket when it does not exist yet.",
        )

    def handle(self, *args, create_bucket: bool, **options):
        store = objectstore.storage()
        if objectstore.is_remote():
            bucket = store.bucket_name  # type: ignore[attr-defined]
            endpoint = store.endpoint_url or "AWS"  # type: ignore[attr-defined]
            where = f"s3://{bucket}/{store.location}"  # type: ignore[attr-defined]
            self.stdout.write(f"Data storage: S3 bucket {where} at {endpoint}")
            self.stdout.write(f"Local cache: {settings.STAGECRAFT_CACHE_DIR}")
            if create_bucket:
                self._create_bucket(store, bucket)
        else:
            self.stdout.write(f"Data storage: local folder {settings.MEDIA_ROOT}")
        key = f"healthz/probe-{uuid.uuid4().hex}"
        try:
            objectstore.put_bytes(b"stagecraft", key)
            with objectstore.open_read(key) as handle:
                if handle.read() != b"stagecraft":
                    raise CommandError("The storage gave back other bytes than were written.")
            objectstore.delete(key)
        except CommandError:
            raise
        except Exception as error:
            raise CommandError(f"The data storage does not work: {error}") from None
        self.stdout.write(self.style.SUCCESS("Write, read and delete: ok"))

    def _create_bucket(self, store, bucket: str) -> None:
        from botocore.exceptions import ClientError

        client = store.connection.meta.client
        try:
            client.head_bucket(Bucket=bucket)
            return
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) not in {"404", "NoSuchBucket"}:
                raise CommandError(f"The bucket cannot be read: {error}") from None
        region = store.region_name
        options = {}
        if region and region != "us-east-1":
            options["CreateBucketConfiguration"] = {"LocationConstraint": region}
        client.create_bucket(Bucket=bucket, **options)
        self.stdout.write(f"Created the bucket {bucket}.")
