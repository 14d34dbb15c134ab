"""The S3 target: `s3://bucket/prefix`, the directory layout, objects created with `If-None-Match: *`."""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from pathlib import Path
from typing import Any

from runenv import retry, settings
from runenv.cache import CHUNK
from runenv.errors import PublishError, UsageError
from runenv.publish.artifacts import LocalArtifact
from runenv.publish.catalogue import (
    CATALOGUE_NAME,
    Catalogue,
    Entries,
    empty_catalogue,
    parse_catalogue,
    render_catalogue,
    with_entries,
)
from runenv.publish.targets.base import Progress, RemoteFile, artifact_dir, file_location
from runenv.redact import redact, register_secret

MULTIPART_THRESHOLD = 64 * 1024 * 1024  # larger files go up in parts
PART_SIZE = 16 * 1024 * 1024  # one part in memory at a time; 10,000 parts allow 160 GB
SHA_KEY = "sha256"  # user metadata (x-amz-meta-sha256) written with the object, in one atomic create
CATALOGUE_ATTEMPTS = 40
CONFLICT = ("PreconditionFailed", "ConditionalRequestConflict")
S3_HINT = "check the bucket, AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and RUNENV_S3_ENDPOINT"


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class S3Target:
    """`s3://bucket/prefix` on AWS S3 or an S3-compatible store (`RUNENV_S3_ENDPOINT` or publish.s3Endpoint)."""

    def __init__(self, url: str, *, timeout: float, endpoint: str | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        if not parts.netloc or "@" in parts.netloc:
            raise UsageError(f"S3 target {url!r} names no bucket", hint="use s3://bucket/prefix")
        try:
            import boto3
            import botocore.config
            import botocore.exceptions
        except ImportError:
            raise UsageError(
                "s3:// targets need boto3", hint="install runenv with the s3 extra: pip install 'runenv[s3]'"
            ) from None
        self._errors = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.display = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        endpoint = settings.current().s3_endpoint or endpoint
        for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            register_secret(os.environ.get(name))  # botocore does not print them; redact hides them if it did
        session = boto3.session.Session()
        config = botocore.config.Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 5, "mode": "standard"},
            s3={"addressing_style": "path"} if endpoint else None,
        )
        self._seen: dict[str, RemoteFile | None] = {}  # what lookup found, by key
        self.client = session.client(
            "s3", endpoint_url=endpoint, region_name=session.region_name or "us-east-1", config=config
        )

    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def _error(self, exc: Exception, what: str, key: str) -> PublishError:
        """One line naming the operation and object; botocore's messages carry no credentials."""
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return PublishError(redact(f"{what}: s3://{self.bucket}/{key}: {message}"), hint=S3_HINT)

    def _call(self, what: str, key: str, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, Key=key, **kwargs)
        except self._errors as exc:
            raise self._error(exc, what, key) from None

    # -- the Target interface ------------------------------------------------------------

    def lookup(self, artifact: LocalArtifact) -> RemoteFile | None:
        key = self._key(self.location(artifact)["file"])
        self._seen[key] = remote = self._remote(key, f"checking {artifact.filename}")
        return remote

    def _remote(self, key: str, what: str) -> RemoteFile | None:
        """Size and sha256 of an object (from the metadata written with it, else by hashing it), or None."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except self._errors as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._error(exc, what, key) from None
        size = int(head["ContentLength"])
        recorded = head.get("Metadata", {}).get(SHA_KEY)
        if recorded:
            return RemoteFile(size, recorded)
        digest = hashlib.sha256()
        body = self._call(what, key, "get_object")["Body"]
        for chunk in iter(lambda: body.read(CHUNK), b""):
            digest.update(chunk)
        return RemoteFile(size, digest.hexdigest())

    def upload(self, artifact: LocalArtifact, progress: Progress) -> RemoteFile:
        """The tarball is created only where absent (`If-None-Match: *`) unless it is being replaced."""
        key = self._key(self.location(artifact)["file"])
        what = f"uploading {artifact.filename}"
        # What lookup found is what publish decided on: absent → create only if still absent; present → replace.
        replacing = self._seen.get(key) is not None
        created = self._put_file(key, artifact.tarball, artifact.sha256, what, progress, only_new=not replacing)
        if created:
            folder = artifact_dir(artifact)
            for sidecar in (artifact.checksum_file, artifact.manifest):
                sha = hashlib.sha256(sidecar.read_bytes()).hexdigest()
                self._put_file(self._key(f"{folder}/{sidecar.name}"), sidecar, sha, what, None, only_new=False)
        remote = self._remote(key, f"verifying {artifact.filename}")
        if remote is None:
            raise PublishError(f"verifying {artifact.filename}: {self.display} does not list it after upload")
        return remote

    def _put_file(
        self, key: str, path: Path, sha256: str, what: str, progress: Progress | None, *, only_new: bool
    ) -> bool:
        """Upload `path` (in parts when large); False when `only_new` and another publisher created it first."""
        condition = {"IfNoneMatch": "*"} if only_new else {}
        size = path.stat().st_size
        try:
            if size < MULTIPART_THRESHOLD:
                with path.open("rb") as body:
                    self.client.put_object(
                        Bucket=self.bucket,
                        Key=key,
                        Body=body,
                        ContentLength=size,
                        Metadata={SHA_KEY: sha256},
                        ChecksumAlgorithm="SHA256",
                        **condition,
                    )
                if progress:
                    progress(size)
            else:
                self._put_parts(key, path, sha256, progress, condition)
        except self._errors as exc:
            if only_new and _code(exc) in CONFLICT:
                return False
            raise self._error(exc, what, key) from None
        return True

    def _put_parts(
        self, key: str, path: Path, sha256: str, progress: Progress | None, condition: dict[str, str]
    ) -> None:
        """A multipart upload read from disk one part at a time, each part's SHA-256 checked by the store."""
        started = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, Metadata={SHA_KEY: sha256}, ChecksumAlgorithm="SHA256"
        )
        upload_id = started["UploadId"]
        parts = []
        try:
            with path.open("rb") as source:
                for number, data in enumerate(iter(lambda: source.read(PART_SIZE), b""), start=1):
                    sent = self.client.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=data,
                        ChecksumAlgorithm="SHA256",
                    )
                    parts.append({"PartNumber": number, "ETag": sent["ETag"], "ChecksumSHA256": sent["ChecksumSHA256"]})
                    if progress:
                        progress(len(data))
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **condition
            )
        except BaseException:
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except self._errors:
                pass  # the store expires abandoned uploads (a bucket lifecycle rule)
            raise

    def location(self, artifact: LocalArtifact) -> dict[str, str]:
        return file_location(artifact)

    def _read_catalogue(self) -> tuple[Catalogue | None, str | None]:
        """The catalogue and its ETag (None, None when there is none yet)."""
        key = self._key(CATALOGUE_NAME)
        try:
            found = self.client.get_object(Bucket=self.bucket, Key=key)
        except self._errors as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None, None
            raise self._error(exc, "reading the catalogue", key) from None
        return parse_catalogue(found["Body"].read(), f"s3://{self.bucket}/{key}"), found["ETag"]

    def read_catalogue(self) -> Catalogue | None:
        return self._read_catalogue()[0]

    def write_catalogue(self, catalogue: Catalogue) -> None:
        key = self._key(CATALOGUE_NAME)
        body = render_catalogue(catalogue)
        self._call("writing the catalogue", key, "put_object", Body=body, ContentType="application/json")

    def add_to_catalogue(self, entries: Entries) -> None:
        """Compare-and-swap on the catalogue's ETag (`If-Match`, or `If-None-Match: *` for the first), retried."""
        key = self._key(CATALOGUE_NAME)
        what = "updating the catalogue"
        for _ in retry.contended(CATALOGUE_ATTEMPTS):
            before, etag = self._read_catalogue()
            after = with_entries(before or empty_catalogue(), entries)
            if after == before:
                return
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=render_catalogue(after),
                    ContentType="application/json",
                    **condition,
                )
                return
            except self._errors as exc:
                if _code(exc) not in CONFLICT:
                    raise self._error(exc, what, key) from None
        raise PublishError(
            f"{what}: s3://{self.bucket}/{key} kept changing under {CATALOGUE_ATTEMPTS} attempts",
            hint="re-run the publish: what is published is found and catalogued",
        )

    def close(self) -> None:
        self.client.close()
