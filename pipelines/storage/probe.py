"""Refuse an object store that would silently lose commits, before anything is written to it.

delta-rs and Lance commit a table version by writing its log file with ``If-None-Match: *``: the
store must refuse the second writer of the same key. An endpoint that ignores the header accepts
both, and one commit vanishes without an error. So at start we PUT one probe key twice and require
the second PUT to be refused with 412; a missing bucket or wrong credentials end here too, with a
message that names them.
"""

from __future__ import annotations

import logging
import threading
import uuid

from pipelines.errors import ConfigError
from pipelines.settings import Settings
from pipelines.storage.location import s3_client, split_s3

__all__ = ["verify_object_store"]

log = logging.getLogger(__name__)

_verified: set[tuple[str | None, str]] = set()
_mutex = threading.Lock()


def _explain(uri: str, bucket: str, e: Exception) -> ConfigError:
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(e, NoCredentialsError):
        return ConfigError(f"{uri}: no S3 credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
    if isinstance(e, EndpointConnectionError):
        return ConfigError(f"{uri}: cannot reach the S3 endpoint ({e}); check DOCLAKE_S3_ENDPOINT_URL")
    if isinstance(e, ClientError):
        code = str(e.response.get("Error", {}).get("Code", ""))
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in {"NoSuchBucket", "404", "NotFound"} or status == 404:
            return ConfigError(f"{uri}: bucket {bucket!r} does not exist; create it first")
        if code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "Forbidden"} or status == 403:
            return ConfigError(
                f"{uri}: the S3 endpoint refused our credentials ({code or status}); check AWS_ACCESS_KEY_ID,"
                " AWS_SECRET_ACCESS_KEY and the bucket policy"
            )
        return ConfigError(f"{uri}: S3 answered {code or status}: {e}")
    return ConfigError(f"{uri}: S3 check failed: {type(e).__name__}: {e}")


def verify_object_store(settings: Settings, uri: str) -> None:
    """Check once per process that ``uri``'s bucket exists, takes our credentials and honours
    conditional PUT.

    Raises:
        ConfigError: the bucket is missing, the credentials are refused, the endpoint is down, or a
            second ``If-None-Match: *`` PUT of one key was accepted (commits would be lost).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split_s3(uri)
    endpoint = settings.s3_endpoint_url
    with _mutex:
        if (endpoint, bucket) in _verified:
            return
    client = s3_client(settings)
    try:
        # HEAD first: a missing bucket must not be created implicitly by our probe PUT (some servers do).
        client.head_bucket(Bucket=bucket)
    except (ClientError, BotoCoreError) as e:
        raise _explain(uri, bucket, e) from e
    key = "/".join(p for p in (prefix, "_doclake", "probe", uuid.uuid4().hex) if p)
    try:
        client.put_object(Bucket=bucket, Key=key, Body=b"1", IfNoneMatch="*")
    except (ClientError, BotoCoreError) as e:
        raise _explain(uri, bucket, e) from e
    try:
        client.put_object(Bucket=bucket, Key=key, Body=b"2", IfNoneMatch="*")
        refused: str | None = None
    except ClientError as e:
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        refused = "412" if status == 412 else f"{e.response.get('Error', {}).get('Code')} ({status})"
    finally:
        try:
            client.delete_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError):
            log.warning("could not delete the probe object s3://%s/%s", bucket, key)
    if refused != "412":
        raise ConfigError(
            f"{uri}: the S3 endpoint does not enforce conditional PUT (a second If-None-Match: * PUT of one key "
            f"was {'accepted' if refused is None else 'answered ' + refused}, not refused with 412). Concurrent "
            "Delta and Lance commits would silently overwrite each other; doclake will not use this endpoint."
        )
    with _mutex:
        _verified.add((endpoint, bucket))
    log.info("%s: the S3 endpoint enforces conditional PUT", uri)
