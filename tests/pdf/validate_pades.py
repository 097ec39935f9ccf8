"""Validates every signature of a PDF with pyHanko, trusting only the given root
(intermediates given beside it), with fetching disabled. Used by
tests/seal_pades.rs.

    python validate_pades.py --result OUT PDF ROOT_PEM [--lt|--lta|--online]
        writes one JSON list to OUT: an object per signature. --online
        fetches revocation data from the certificates' URLs, hard-fail.
    python validate_pades.py --result OUT --batch LIST_FILE ROOT_PEM ISSUING_PEM
        validates each PDF named in LIST_FILE (one path a line, optionally
        followed by a tab and --lt or --lta) and writes one JSON line per PDF
        to OUT: {"file", "signatures": [...], "error": null or why the file
        could not be validated}.

The verdicts go to OUT and nowhere else: whatever pyHanko or its dependencies
print (deprecation warnings, say) goes to stdout or stderr and cannot change
them."""

import json
import sys

from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
import asyncio

from pyhanko.sign.validation import (
    DocumentSecurityStore,
    validate_pdf_signature,
    validate_pdf_timestamp,
)
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation.ades import ades_lta_validation
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.policy_decl import (
    LocalKnowledge,
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.registry import SimpleTrustManager
from pyhanko_certvalidator import ValidationContext


def from_dss(reader, signature, root):
    """The signature validated with the document's DSS as the only source of
    certificates and revocation data: revocation checking is hard-fail and
    nothing is fetched."""
    dss = DocumentSecurityStore.read_dss(reader)
    context = dss.as_validation_context(
        {
            "trust_roots": [load_cert_from_pemder(root)],
            "allow_fetching": False,
            "revocation_mode": "hard-fail",
        }
    )
    status = validate_pdf_signature(signature, context)
    return {"dss_bottom_line": status.bottom_line, "dss_trusted": status.trusted}


def ltv(signature, root):
    """pyHanko's AdES LTA validation (EN 319 102-1 §5.6.3) from what the
    document carries (DSS, time-stamps): revocation data is required for every
    certificate, and nothing may be fetched."""
    required = RevocationCheckingPolicy(
        ee_certificate_rule=RevocationCheckingRule.CRL_OR_OCSP_REQUIRED,
        intermediate_ca_cert_rule=RevocationCheckingRule.CRL_OR_OCSP_REQUIRED,
    )
    policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(
            trust_roots=[load_cert_from_pemder(root)]
        ),
        revinfo_policy=CertRevTrustPolicy(required),
    )
    spec = PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY
            ),
            local_knowledge=LocalKnowledge(),
        )
    )
    result = asyncio.run(ades_lta_validation(signature, spec))
    return {"ades_lta": str(result.ades_subindic)}


def verdicts(pdf, root, context, mode=None):
    """pyHanko's verdict on each signature of the file `pdf`."""
    results = []
    with open(pdf, "rb") as handle:
        reader = PdfFileReader(handle)
        if reader.xrefs.hybrid_xrefs_present:
            # pyHanko's strict mode refuses to validate hybrid-reference files
            # (a classic table plus /XRefStm, as Word writes): non-strict.
            reader = PdfFileReader(handle, strict=False)
        # As reader.embedded_signatures, but one signature at a time.
        for name, _, field in enumerate_sig_fields(reader, filled_status=True):
            try:
                signature = EmbeddedPdfSignature(reader, field, name)
                results.append(verdict(reader, signature, root, context, mode))
            except Exception as error:
                # One broken signature (say, a damaged earlier one) must not
                # hide the verdict on the others.
                results.append(
                    {"field": name, "error": f"{type(error).__name__}: {error}"}
                )
    return results


def verdict(reader, signature, root, context, mode):
    """pyHanko's verdict on one signature."""
    if signature.sig_object_type == "/DocTimeStamp":
        status = validate_pdf_timestamp(signature, context)
        return {
            "field": signature.field_name,
            "document_time_stamp": True,
            "intact": status.intact,
            "valid": status.valid,
            "trusted": status.trusted,
            "coverage": status.coverage.name,
            "sub_filter": str(signature.sig_object.get("/SubFilter")),
        }
    status = validate_pdf_signature(signature, context)
    timestamp = status.timestamp_validity
    result = {
        "field": signature.field_name,
        "intact": status.intact,
        "valid": status.valid,
        "trusted": status.trusted,
        "coverage": status.coverage.name,
        "modification_level": (
            status.modification_level.name
            if status.modification_level is not None
            else None
        ),
        "bottom_line": status.bottom_line,
        # For a certifying signature: whether what came after stays within
        # its DocMDP permissions (None when there is nothing to judge).
        "docmdp_ok": status.docmdp_ok,
        "has_timestamp": timestamp is not None,
        "timestamp_valid": bool(
            timestamp is not None and timestamp.intact and timestamp.valid
        ),
        "sub_filter": str(signature.sig_object.get("/SubFilter")),
    }
    if mode is not None:
        result.update(from_dss(reader, signature, root))
    if mode == "--lta":
        result.update(ltv(signature, root))
    return result


def validation_context(root):
    """Soft-fail revocation checking, nothing fetched, only `root` trusted and
    no other certificate given: the signature must carry its own path."""
    return ValidationContext(
        trust_roots=[root],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )


def online_context(root):
    """Hard-fail revocation checking with fetching allowed, only `root`
    trusted: how a relying party with nothing but the root and the network
    checks a seal (the certificates' OCSP and CRL URLs must answer)."""
    return ValidationContext(
        trust_roots=[root],
        allow_fetching=True,
        revocation_mode="hard-fail",
    )


def batch(out, list_file, root):
    """One JSON line per PDF of `list_file`, each validated in a fresh context;
    a file pyHanko cannot handle gets its error instead of stopping the run."""
    root_cert = load_cert_from_pemder(root)
    with open(list_file) as paths:
        for line in paths:
            pdf, _, mode = line.rstrip("\r\n").partition("\t")
            if not pdf:
                continue
            try:
                context = validation_context(root_cert)
                result = {
                    "file": pdf,
                    "signatures": verdicts(pdf, root, context, mode or None),
                    "error": None,
                }
            except Exception as error:
                result = {
                    "file": pdf,
                    "signatures": [],
                    "error": f"{type(error).__name__}: {error}",
                }
            out.write(json.dumps(result) + "\n")
            out.flush()


def main() -> None:
    if sys.argv[1] != "--result":
        sys.exit("usage: validate_pades.py --result OUT (--batch LIST ROOT | PDF ROOT [--lt|--lta])")
    result, args = sys.argv[2], sys.argv[3:]
    if args[0] == "--batch":
        with open(result, "w") as out:
            batch(out, *args[1:])
        return
    pdf, root, *rest = args
    mode = rest[0] if rest and rest[0] in ("--lt", "--lta") else None
    if rest and rest[0] == "--online":
        validation = online_context(load_cert_from_pemder(root))
    else:
        validation = validation_context(load_cert_from_pemder(root))
    found = verdicts(pdf, root, validation, mode)
    with open(result, "w") as out:
        json.dump(found, out)


if __name__ == "__main__":
    main()
