"""The bearer run's half of the hooks (tests/contract/hooks.py).

Each operation is called with the access token of whoever it is meant for:
the RCCS, the legal representative, an RA operator, the CA administrator,
or the organisation's seal server (a token bound to the TLS client
certificate the run presents). Half of the calls are made realistic: the
state each operation needs is set up first through the API itself (a fresh
draft request, a complete one, an enrolment link read from the mail sink, an
activation credential to revoke), or taken from what the Rust test prepared
(certificates to revoke and renew, a locked credential).
"""

import copy
import email
import email.policy
import itertools
import mailbox
import time
import urllib.parse

import hooks
from hooks import CONTEXT, PICK, SESSION

URL = CONTEXT["url"]
TOKENS = {}
# Tokens live 300 s at the provider; take a new one well before.
TOKEN_REUSE_SECS = 200
POOLS = {
    name: list(CONTEXT[name])
    for name in ("revocable", "revocable_by_legal_representative", "renewable", "withdrawable")
}
POOLS["unlockable"] = list(CONTEXT["locked_credentials"])
# What a case took from a pool; given back unless the call succeeded.
TAKEN = {}
SERIAL = itertools.count(1)


def token(who):
    """An access token for `who`, from the provider (certificate-bound for the seal server)."""
    cached = TOKENS.get(who)
    if cached and cached[1] > time.monotonic():
        return cached[0]
    headers = {}
    if who == "seal-server":
        pem = open(CONTEXT["client_cert"]).read()
        headers["x-client-certificate"] = urllib.parse.quote(pem, safe="-_.~")
    response = SESSION.post(
        CONTEXT["token_url"],
        auth=(who, CONTEXT["client_secret"]),
        data={
            "grant_type": "client_credentials",
            "scope": "seal",
            "resource": CONTEXT["audience"],
        },
        headers=headers,
        timeout=30,
    )
    response.raise_for_status()
    value = response.json()["access_token"]
    TOKENS[who] = (value, time.monotonic() + TOKEN_REUSE_SECS)
    return value


def as_(who):
    return {"Authorization": f"Bearer {token(who)}"}


hooks.seal_client_headers = lambda: as_("seal-server")


CSC_PUBLIC = ("/csc/v1/info", "/csc/v2/info")


def caller_of(path):
    """Whom an operation is meant for; None for the public ones."""
    if path in ("/ra/v1/requests/{id}/documents/{document_id}", "/ra/v1/persons/{id}/role-withdrawal"):
        return "op-1"
    if path.startswith("/ra/v1/legal-representative/") or path == "/ra/v1/enrolments":
        return "legal-a"
    if path.startswith("/ra/v1/") or path.startswith("/api/v1/credentials/{id}/seals"):
        return "rccs-a"
    if path.startswith("/api/v1/credentials/{id}/activation-credentials"):
        return "rccs-a"
    if path == "/api/v1/credentials/{id}/unlock":
        return "rccs-a"
    if path.startswith("/api/v1/entities/"):
        return "op-1"
    if path.startswith("/ca/"):
        return "ca-admin"
    if path.startswith("/api/v1/") or (path.startswith("/csc/") and path not in CSC_PUBLIC):
        return "seal-server"
    return None


# ---- fixtures made through the API -------------------------------------------


def application():
    """Another application of the run's organisation (the RCCS may apply
    for his own only), with people of its own."""
    n = next(SERIAL)
    body = copy.deepcopy(CONTEXT["application"])
    for role in ("rccs", "legal_representative", "agent"):
        body[role]["email"] = f"{role.replace('_', '-')}-{n}@contract.example"
    return body


def draft(body=None):
    """A new draft request (of `body`, else of a new organisation): its view."""
    response = SESSION.post(
        URL + "/ra/v1/requests",
        json=body if body is not None else application(),
        headers=as_("rccs-a"),
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


PDF_EVIDENCE = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
JPEG_EVIDENCE = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
PNG_EVIDENCE = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
    b"\x90wS\xde\x00\x00\x00\x00IEND\xaeB`\x82"
)


def complete_draft():
    """A draft with its three documents and the terms accepted: ready to submit."""
    request = draft()["id"]
    for kind, content in (
        ("identity_document", JPEG_EVIDENCE),
        ("registry_extract", PDF_EVIDENCE),
        ("mandate", PNG_EVIDENCE),
    ):
        response = SESSION.post(
            f"{URL}/ra/v1/requests/{request}/documents",
            params={"kind": kind},
            data=content,
            headers={**as_("rccs-a"), "Content-Type": "application/octet-stream"},
            timeout=30,
        )
        response.raise_for_status()
    response = SESSION.post(
        f"{URL}/ra/v1/requests/{request}/terms",
        json={"version": "1.0"},
        headers=as_("rccs-a"),
        timeout=30,
    )
    response.raise_for_status()
    return request


# The mail sink's messages read so far: key -> (To, enrolment link or None).
# Every draft mails its people, so the Maildir grows all run long; each
# message is parsed once.
MAIL_READ = {}


def enrolment_link(address):
    """The enrolment link mailed to `address` (waits up to 10 s for the mail)."""
    deadline = time.monotonic() + 10
    maildir = mailbox.Maildir(CONTEXT["maildir"], factory=None, create=False)
    while time.monotonic() < deadline:
        for key in maildir.keys():
            if key not in MAIL_READ:
                parsed = email.message_from_bytes(maildir.get_bytes(key), policy=email.policy.default)
                body = parsed.get_body(preferencelist=("plain",))
                text = body.get_content() if body is not None else ""
                link = text.split("/enrol#", 1)[1].split()[0] if "/enrol#" in text else None
                MAIL_READ[key] = (str(parsed.get("To", "")), link)
            to, link = MAIL_READ[key]
            if link is not None and address in to:
                return link
        time.sleep(0.1)
    return None


def activation_credential():
    """A new OIDC activation credential of the run's seal credential: its id."""
    response = SESSION.post(
        f"{URL}/api/v1/credentials/{CONTEXT['credential']}/activation-credentials",
        json=oidc_binding(),
        headers=as_("rccs-a"),
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["id"]


def identity_provider():
    """A new registration of a provider for the run's organisation: its id."""
    response = SESSION.post(
        f"{URL}/api/v1/entities/{CONTEXT['entity']}/identity-providers",
        json=provider_registration(),
        headers=as_("op-1"),
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["id"]


def disabled_identity_provider():
    """A new registration, disabled: its id."""
    provider = identity_provider()
    response = SESSION.post(
        f"{URL}/api/v1/entities/{CONTEXT['entity']}/identity-providers/{provider}/disable",
        headers=as_("op-1"),
        timeout=30,
    )
    response.raise_for_status()
    return provider


def provider_registration():
    return {
        "issuer": f"https://idp-{next(SERIAL)}.contract.example",
        "audience": CONTEXT["audience"],
        "callers": "servers",
        "allowed": ["invoicing-server"],
    }


def oidc_binding():
    return {"type": "oidc", "issuer": CONTEXT["issuer"], "subject": f"server-{next(SERIAL)}"}


def newest_seal_index():
    response = SESSION.get(
        f"{URL}/api/v1/credentials/{CONTEXT['credential']}/seals",
        params={"limit": 1},
        headers=as_("rccs-a"),
        timeout=30,
    )
    response.raise_for_status()
    seals = response.json()["seals"]
    return seals[0]["journal_index"] if seals else None


def ca_serial():
    response = SESSION.get(URL + "/ca/v1/termination", headers=as_("ca-admin"), timeout=30)
    response.raise_for_status()
    return response.json()["ca_serial"]


# ---- the hook ------------------------------------------------------------------


def take(pool, case):
    """One item of `pool` for `case`, or None when the pool is spent."""
    if not POOLS[pool]:
        return None
    item = POOLS[pool].pop()
    TAKEN[id(case)] = (pool, item)
    return item


def set_json(case, body):
    case.body = body
    case.media_type = "application/json"


def set_path(case, **values):
    case.path_parameters = {**(case.path_parameters or {}), **values}


def realistic(case, kwargs):
    """Sets `case` up to succeed, where the operation's state can be made."""
    method = case.operation.method.upper()
    path = case.operation.path
    credential = CONTEXT["credential"]
    if path.startswith("/csc/") or path.startswith("/api/v1/seal/") or path.endswith("/authorize"):
        hooks.realistic_seal_client(case)
    elif path == "/api/v1/credentials/{id}/unlock":
        locked = take("unlockable", case)
        if locked is not None:
            set_path(case, id=locked)
    elif path == "/api/v1/credentials/{id}/activation-credentials":
        set_path(case, id=credential)
        if method == "POST":
            set_json(case, oidc_binding())
    elif path == "/api/v1/credentials/{id}/activation-credentials/{activation_id}":
        set_path(case, id=credential, activation_id=activation_credential())
    elif path == "/api/v1/credentials/{id}/activation-credentials/{activation_id}/rotate":
        set_path(case, id=credential, activation_id=activation_credential())
        set_json(case, oidc_binding())
    elif path == "/api/v1/credentials/{id}/seals":
        set_path(case, id=credential)
        case.query = {}
    elif path == "/api/v1/credentials/{id}/seals/{index}/proof":
        index = newest_seal_index()
        if index is not None:
            set_path(case, id=credential, index=str(index))
    elif path == "/api/v1/entities/{id}/identity-providers":
        set_path(case, id=CONTEXT["entity"])
        if method == "POST":
            set_json(case, provider_registration())
    elif path == "/api/v1/entities/{id}/identity-providers/{provider_id}":
        set_path(case, id=CONTEXT["entity"], provider_id=identity_provider())
    elif path == "/api/v1/entities/{id}/identity-providers/{provider_id}/disable":
        set_path(case, id=CONTEXT["entity"], provider_id=identity_provider())
    elif path == "/api/v1/entities/{id}/identity-providers/{provider_id}/enable":
        set_path(case, id=CONTEXT["entity"], provider_id=disabled_identity_provider())
    elif path == "/ra/v1/requests":
        if method == "POST":
            set_json(case, application())
        else:
            case.query = {}
    elif path == "/ra/v1/requests/{id}":
        set_path(case, id=CONTEXT["request"])
    elif path == "/ra/v1/requests/{id}/documents":
        set_path(case, id=draft()["id"])
        case.query = {"kind": "registry_extract"}
        case.body = PDF_EVIDENCE
        case.media_type = "application/pdf"
    elif path == "/ra/v1/requests/{id}/documents/{document_id}":
        set_path(case, id=CONTEXT["request"], document_id=CONTEXT["document"])
    elif path == "/ra/v1/requests/{id}/terms":
        set_path(case, id=draft()["id"])
        set_json(case, {"version": "1.0"})
    elif path == "/ra/v1/requests/{id}/identity-verification":
        set_path(case, id=draft()["id"])
        set_json(case, {"method": "eid_substantial"})
    elif path == "/ra/v1/requests/{id}/moves":
        set_path(case, id=complete_draft())
        set_json(case, {"move": "submit"})
    elif path == "/ra/v1/certificates/{serial}/renewal":
        serial = take("renewable", case)
        if serial is not None:
            set_path(case, serial=serial)
            set_json(case, {"terms": {"version": "1.0"}})
    elif path == "/ra/v1/certificates/{serial}/revocation":
        serial = take("revocable", case)
        if serial is not None:
            set_path(case, serial=serial)
            set_json(case, {"reason": "cessation_of_operation"})
    elif path == "/ra/v1/legal-representative/certificates/{serial}/revocation":
        serial = take("revocable_by_legal_representative", case)
        if serial is not None:
            set_path(case, serial=serial)
            set_json(case, {"reason": "cessation_of_operation"})
    elif path == "/ra/v1/enrolments":
        body = application()
        draft(body)
        link = enrolment_link(body["legal_representative"]["email"])
        if link is not None:
            # The legal representative of the run is enrolled already; the
            # agent's identity takes the new link.
            hooks.set_authorization(case, kwargs, f"Bearer {token('agent-a')}")
            set_json(case, {"token": link})
    elif path == "/ra/v1/persons/{id}/enrolment":
        set_path(case, id=draft()["persons"]["legal_representative"]["id"])
    elif path == "/ra/v1/persons/{id}/role-withdrawal":
        person = take("withdrawable", case)
        if person is not None:
            set_path(case, id=person)
            set_json(case, {"reason": "contract run"})
    elif path == "/ca/v1/termination/approvals":
        set_json(case, {"ca_serial": ca_serial(), "reason": "contract run"})


def before_call(case, kwargs):
    who = caller_of(case.operation.path)
    # A few calls keep what schemathesis generated (often nothing: then the
    # run's TLS client certificate speaks), to meet the refusals too. Those
    # are not worth a fixture: the pools hold one use each.
    if who is not None:
        if PICK.random() >= 0.95:
            return
        hooks.set_authorization(case, kwargs, f"Bearer {token(who)}")
    if PICK.random() < 0.5:
        try:
            realistic(case, kwargs)
        except Exception as error:  # a fixture that failed leaves the generated case
            print(f"fixture for {case.operation.method} {case.operation.path}: {error}")


def after_call(case, response):
    taken = TAKEN.pop(id(case), None)
    if taken is not None and not 200 <= response.status_code < 300:
        POOLS[taken[0]].append(taken[1])
