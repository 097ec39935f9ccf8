"""schemathesis hooks for sceau's contract runs (tests/contract.rs).

Generated requests mostly name credentials, SADs, requests and serials that
do not exist, so they only ever meet the 4xx paths. Half of the requests are
therefore made realistic: the run's real credential, a SAD freshly
authorised for exactly what the request signs, a real PDF, and in the bearer
run a request in the state the move needs, a certificate not yet revoked, a
fresh enrolment link from the mail sink. So every operation is also
exercised where it succeeds. Every call's operation and status is appended
to the calls file, from which the Rust test checks that each operation got a
2xx and enough cases.

Two modes (`mode` in the context file): `mtls`, where the TLS client
certificate alone authenticates, and `bearer`, where each operation gets the
access token of the person or server it is meant for.
"""

import base64
import hashlib
import json
import os
import random

import requests
import schemathesis

CONTEXT = json.load(open(os.environ["SCEAU_CONTRACT_CONTEXT"]))
SESSION = requests.Session()
# requests lets REQUESTS_CA_BUNDLE override a session's own trust store.
SESSION.trust_env = False
SESSION.cert = (CONTEXT["client_cert"], CONTEXT["client_key"])
SESSION.verify = CONTEXT["server_ca"]
PDF = open(CONTEXT["sample_pdf"], "rb").read()
PICK = random.Random(CONTEXT["seed"])
SHA256 = "2.16.840.1.101.3.4.2.1"
MODE = CONTEXT.get("mode", "mtls")

# The binary bodies of seals, time-stamp and OCSP requests go out as they are.
for media_type in (
    "application/pdf",
    "application/timestamp-query",
    "application/ocsp-request",
    "image/jpeg",
    "image/png",
):
    schemathesis.serializer.alias(media_type, "application/octet-stream")


def key_algorithm():
    """The signature algorithm the run's credential signs with."""
    response = SESSION.post(
        CONTEXT["url"] + "/csc/v2/credentials/info",
        json={"credentialID": CONTEXT["credential"]},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["key"]["algo"][0]


SIGN_ALGO = key_algorithm()


def seal_client_headers():
    """What authenticates the seal client besides its TLS certificate (the
    bearer run replaces this with its access token: a SAD is bound to the
    principal that asked for it)."""
    return {}


def fresh_sad(count):
    response = SESSION.post(
        CONTEXT["url"] + "/csc/v2/credentials/authorize",
        json={"credentialID": CONTEXT["credential"], "numSignatures": max(1, count)},
        headers=seal_client_headers(),
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["SAD"]


def digest_b64(text):
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def realistic_csc(path, body):
    """The request, with the real credential and a SAD for what it signs."""
    body["credentialID"] = CONTEXT["credential"]
    if path.endswith("signatures/signHash"):
        key = "hash" if "/v1/" in path else "hashes"
        hashes = body.get(key)
        if not isinstance(hashes, list) or not hashes or len(hashes) > 20 or PICK.random() < 0.5:
            body[key] = [digest_b64(f"hash {PICK.random()}")]
        body["signAlgo"] = SIGN_ALGO
        body.pop("signAlgoParams", None)
        body["hashAlgo" if "/v1/" in path else "hashAlgorithmOID"] = SHA256
        body["SAD"] = fresh_sad(len(body[key]))
    elif path.endswith("signatures/signDoc"):
        count = 0
        documents = body.get("documents")
        if not isinstance(documents, list) or len(documents) > 3:
            documents = [{"signature_format": "C"}]
        documents = [d if isinstance(d, dict) else {"signature_format": "C"} for d in documents]
        for document in documents:
            document["signAlgo"] = SIGN_ALGO
            document.pop("signAlgoParams", None)
            if document.get("signature_format") == "P":
                document["document"] = base64.b64encode(PDF).decode()
                document["signed_envelope_property"] = "Revision"
            else:
                document["signature_format"] = "C"
                document["document"] = base64.b64encode(b"contract run").decode()
                document.pop("signed_props", None)
                if document.get("conformance_level") == "Ades-B-LTA":
                    document["conformance_level"] = "Ades-B-LT"
                if document.get("signed_envelope_property") not in ("Detached", "Attached"):
                    document["signed_envelope_property"] = "Detached"
            count += 1
        body["documents"] = documents
        body.pop("documentDigests", None)
        body["SAD"] = fresh_sad(count)
    elif path.endswith("credentials/extendTransaction"):
        body["SAD"] = fresh_sad(1)


def set_authorization(case, kwargs, value):
    """Replaces whatever Authorization header schemathesis generated."""
    for headers in (case.headers, kwargs.get("headers")):
        if headers is not None and hasattr(headers, "keys"):
            for name in [n for n in headers if n.lower() == "authorization"]:
                del headers[name]
    if value is not None:
        if case.headers is None:
            case.headers = {}
        case.headers["Authorization"] = value
        if kwargs.get("headers") is not None:
            kwargs["headers"]["Authorization"] = value


def realistic_seal_client(case):
    """The seal client's operations with the real credential (both modes)."""
    path = case.operation.path
    if path.endswith("/credentials/info"):
        if isinstance(case.body, dict):
            case.body["credentialID"] = CONTEXT["credential"]
            case.media_type = "application/json"
    elif path.startswith("/csc/") and not path.endswith("/info"):
        if isinstance(case.body, dict):
            try:
                realistic_csc(path, case.body)
                case.media_type = "application/json"
            except requests.RequestException:
                pass
    elif path == "/api/v1/seal/hashes":
        if isinstance(case.body, dict):
            case.body["credential"] = CONTEXT["credential"]
    elif path in ("/api/v1/seal/cades", "/api/v1/seal/pades"):
        case.query = {**(case.query or {}), "credential": CONTEXT["credential"]}
        if path.endswith("/pades"):
            case.body = PDF
    elif path == "/api/v1/credentials/{id}/authorize":
        case.path_parameters = {**(case.path_parameters or {}), "id": CONTEXT["credential"]}


@schemathesis.hook
def before_call(context, case, kwargs):
    if MODE == "bearer":
        import back_office

        back_office.before_call(case, kwargs)
        return
    # The client is authenticated by its TLS certificate; a generated bearer
    # token would take precedence and turn every request into a 401.
    set_authorization(case, kwargs, None)
    if PICK.random() < 0.5:
        realistic_seal_client(case)


@schemathesis.hook
def after_call(context, case, response):
    if MODE == "bearer":
        import back_office

        back_office.after_call(case, response)
    with open(CONTEXT["calls"], "a") as calls:
        calls.write(
            json.dumps(
                {
                    "method": case.operation.method.upper(),
                    "path": case.operation.path,
                    "status": response.status_code,
                    # What the refusals said, for whoever reads a failed run.
                    "said": response.text[:300] if response.status_code >= 400 else "",
                }
            )
            + "\n"
        )
