"""A real S3-compatible server for the tests: moto's standalone server on 127.0.0.1, spoken
to over HTTP through s3fs and botocore like any S3 endpoint, with IAM enforced.

Two users exist: ``writer`` (every S3 action) and ``reader`` (get and list only); a bucket
``features`` is made. Clients find the server through ``AWS_ENDPOINT_URL``, as they would a
MinIO or Ceph gateway; credentials come from the environment, never from a flag.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

BUCKET = "features"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    writer: tuple[str, str]  # (access key id, secret access key)
    reader: tuple[str, str]

    def env(self, keys: tuple[str, str] | None = None) -> dict[str, str]:
        """The environment a client needs: endpoint, region, credentials; no config files."""
        key_id, secret = keys or self.writer
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",  # no instance-role probe on a laptop
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, data: bytes) -> None:
    headers = {"Content-Type": "application/octet-stream"}  # a form's body is not request.data
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    urllib.request.urlopen(request, timeout=10)


def _wait_until_up(endpoint: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            return
        except (urllib.error.URLError, ConnectionError):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto server on {endpoint} did not start") from None
            time.sleep(0.1)


def _users_and_bucket(endpoint: str) -> tuple[tuple[str, str], tuple[str, str]]:
    import boto3

    bootstrap = {
        "endpoint_url": endpoint,
        "region_name": REGION,
        "aws_access_key_id": "bootstrap",
        "aws_secret_access_key": "bootstrap",
    }
    iam = boto3.client("iam", **bootstrap)

    def user(name: str, actions: list[str]) -> tuple[str, str]:
        iam.create_user(UserName=name)
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
        }
        iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    writer = user("writer", ["s3:*"])
    reader = user("reader", ["s3:GetObject", "s3:ListBucket"])
    boto3.client("s3", **bootstrap).create_bucket(Bucket=BUCKET)
    _post(f"{endpoint}/moto-api/reset-auth", b"0")  # from now on every request is checked
    return writer, reader


@contextmanager
def s3_server(timeout_s: float = 60) -> Iterator[S3Server]:
    """Start the server on a free port of 127.0.0.1, set it up, stop it after."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_up(endpoint, process, timeout_s)
        writer, reader = _users_and_bucket(endpoint)
        yield S3Server(endpoint, writer, reader)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
