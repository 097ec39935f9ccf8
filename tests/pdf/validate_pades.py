"""Validates every signature of a PDF with pyHanko, trusting only the given root
(intermediates given beside it), with fetching disabled. Prints one JSON object
per signature. Used by tests/seal_pades.rs."""

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
from pyhanko.sign.validation.ades import ades_lta_validation
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


def main() -> None:
    pdf, root, *others = sys.argv[1:]
    mode = None
    if others and others[0] in ("--lt", "--lta"):
        mode = others[0]
        others = others[1:]
    context = ValidationContext(
        trust_roots=[load_cert_from_pemder(root)],
        other_certs=[load_cert_from_pemder(o) for o in others],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    results = []
    with open(pdf, "rb") as handle:
        reader = PdfFileReader(handle)
        for signature in reader.embedded_signatures:
            if signature.sig_object_type == "/DocTimeStamp":
                status = validate_pdf_timestamp(signature, context)
                results.append(
                    {
                        "field": signature.field_name,
                        "document_time_stamp": True,
                        "intact": status.intact,
                        "valid": status.valid,
                        "trusted": status.trusted,
                        "coverage": status.coverage.name,
                        "sub_filter": str(signature.sig_object.get("/SubFilter")),
                    }
                )
                continue
            status = validate_pdf_signature(signature, context)
            timestamp = status.timestamp_validity
            results.append(
                {
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
                    "has_timestamp": timestamp is not None,
                    "timestamp_valid": bool(
                        timestamp is not None and timestamp.intact and timestamp.valid
                    ),
                    "sub_filter": str(signature.sig_object.get("/SubFilter")),
                }
            )
            if mode is not None:
                results[-1].update(from_dss(reader, signature, root))
            if mode == "--lta":
                results[-1].update(ltv(signature, root))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
