//! The DSS revision of a B-LT seal: the certificates, OCSP responses and CRLs a
//! validator needs, added after the signature.

use super::*;

/// The revision that gives the catalog a DSS (EN 319 142-1 §5.4.2) with
/// `certificates` and `crls` (DER each, as streams), merged with any DSS the
/// document had; its bytes, to be written after `pdf`.
pub(super) fn dss_revision(
    pdf: &[u8],
    certificates: &[Vec<u8>],
    crls: &[Vec<u8>],
) -> Result<Vec<u8>, SealError> {
    let internal =
        |e: String| SealError::Internal(format!("adding the DSS to the sealed PDF: {e}"));
    let file = PdfFile::read(pdf).map_err(|e| internal(e.to_string()))?;
    let mut revision = Revision::new(&file).map_err(internal)?;
    let (catalog_id, mut catalog) = file.catalog().map_err(internal)?;
    let mut dss = catalog
        .get(b"DSS")
        .ok()
        .and_then(|d| file.dictionary(d))
        .unwrap_or_default();
    let existing = |dss: &Dictionary, key: &[u8]| -> Vec<Object> {
        dss.get(key)
            .ok()
            .and_then(|items| file.resolve(items).ok())
            .and_then(|items| items.as_array().ok().cloned())
            .unwrap_or_default()
    };
    let mut certs = existing(&dss, b"Certs");
    let mut revocation = existing(&dss, b"CRLs");
    let mut stream = |bytes: &[u8]| -> Result<Object, SealError> {
        revision
            .add(Object::Stream(lopdf::Stream::new(
                Dictionary::new(),
                bytes.to_vec(),
            )))
            .map(Object::Reference)
            .map_err(|_| no_object_number())
    };
    for certificate in certificates {
        certs.push(stream(certificate)?);
    }
    for crl in crls {
        revocation.push(stream(crl)?);
    }
    dss.set("Type", Object::Name(b"DSS".to_vec()));
    dss.set("Certs", Object::Array(certs));
    dss.set("CRLs", Object::Array(revocation));
    catalog.set("DSS", Object::Dictionary(dss));
    revision.set(catalog_id, Object::Dictionary(catalog));
    revision.write().map_err(internal)
}
