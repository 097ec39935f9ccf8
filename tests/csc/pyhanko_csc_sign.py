"""Signs a PDF through sceau's CSC API with pyHanko's own CSC client.

usage: pyhanko_csc_sign.py --result OUT BASE_URL API_VERSION CREDENTIAL_ID
                           CLIENT_CERT CLIENT_KEY SERVER_CA IN_PDF OUT_PDF

The client authenticates with its TLS client certificate (authType TLS); each
signature is authorised just in time, with the SAD bound to the hashes about
to be signed (SCAL2), through credentials/authorize. Writes what the service
said about the credential, as JSON, to OUT: nothing printed can change it.
"""

import asyncio
import json
import ssl
import sys

import aiohttp
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.signers import csc_signer


class JustInTimeAuthorization(csc_signer.CSCAuthorizationManager):
    """Asks credentials/authorize for a SAD bound to exactly these hashes."""

    def __init__(self, session_info, credential_info, http):
        super().__init__(session_info, credential_info)
        self.http = http

    async def authorize_signature(self, hash_b64s):
        request = self.format_csc_auth_request(hash_b64s=hash_b64s)
        url = self.csc_session_info.endpoint_url("credentials/authorize")
        async with self.http.post(url, json=request) as response:
            body = await response.json()
            if response.status != 200:
                raise RuntimeError(f"authorize: {response.status} {body}")
        return self.parse_csc_auth_response(body)


async def main(result, url, version, credential, cert, key, server_ca, pdf_in, pdf_out):
    tls = ssl.create_default_context(cafile=server_ca)
    tls.load_cert_chain(cert, key)
    connector = aiohttp.TCPConnector(ssl=tls)
    async with aiohttp.ClientSession(connector=connector) as http:
        session_info = csc_signer.CSCServiceSessionInfo(
            service_url=url, credential_id=credential, api_ver=version
        )
        credential_info = await csc_signer.fetch_certs_in_csc_credential(
            http, session_info
        )
        signer = csc_signer.CSCSigner(
            http,
            auth_manager=JustInTimeAuthorization(
                session_info, credential_info, http
            ),
        )
        with open(pdf_in, "rb") as source:
            writer = IncrementalPdfFileWriter(source)
            meta = signers.PdfSignatureMetadata(
                field_name="CscSeal",
                subfilter=fields.SigSeedSubFilter.PADES,
                md_algorithm="sha256",
            )
            with open(pdf_out, "wb") as target:
                await signers.async_sign_pdf(
                    writer, meta, signer=signer, output=target
                )
        with open(result, "w") as out:
            json.dump(
                {
                    "scal2": credential_info.hash_pinning_required,
                    "chain": len(credential_info.chain),
                    "mechanisms": sorted(credential_info.supported_mechanisms),
                    "max_batch_size": credential_info.max_batch_size,
                },
                out,
            )


if __name__ == "__main__":
    if len(sys.argv) != 11 or sys.argv[1] != "--result":
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[2], *sys.argv[3:11]))
