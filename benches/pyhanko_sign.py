"""pyHanko's side of benches/seal_load.rs: signs a PDF in-process with a local
P-256 key (PAdES B-B, ETSI.CAdES.detached, an incremental update), the same
job sceau does with its HSM key, and writes one JSON object to RESULT: the
seconds the signing took, and the resident memory before it and at its peak.
Nothing printed (a dependency's warning, say) can change the figures.

    python pyhanko_sign.py --result RESULT IN.pdf OUT.pdf"""

import json
import sys
import time
from datetime import datetime, timedelta, timezone
from io import BytesIO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko_certvalidator.registry import SimpleCertificateStore
from asn1crypto import keys as asn1_keys, x509 as asn1_x509


def status_kib(field):
    """A /proc/self/status field, in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def local_signer():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    der_key = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(
            certificate.public_bytes(serialization.Encoding.DER)
        ),
        signing_key=asn1_keys.PrivateKeyInfo.load(der_key),
        cert_registry=SimpleCertificateStore(),
    )


def main():
    if len(sys.argv) != 5 or sys.argv[1] != "--result":
        sys.exit(__doc__)
    result, source, target = sys.argv[2:5]
    signer = local_signer()
    with open(source, "rb") as handle:
        data = handle.read()
    # The peak so far (imports, key generation) is reset: VmHWM then tells
    # the signing's own peak.
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    before = status_kib("VmRSS")
    started = time.perf_counter()
    writer = IncrementalPdfFileWriter(BytesIO(data))
    out = BytesIO()
    signers.sign_pdf(
        writer,
        signers.PdfSignatureMetadata(
            field_name="Bench", subfilter=SigSeedSubFilter.PADES
        ),
        signer=signer,
        output=out,
    )
    seconds = time.perf_counter() - started
    peak = status_kib("VmHWM")
    with open(target, "wb") as handle:
        handle.write(out.getvalue())
    with open(result, "w") as out:
        json.dump({"seconds": seconds, "rss_before_kib": before, "peak_kib": peak}, out)


if __name__ == "__main__":
    main()
