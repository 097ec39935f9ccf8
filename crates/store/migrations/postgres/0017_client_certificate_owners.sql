-- Which organisation a client certificate belongs to, one row per certificate
-- (by SHA-256 of its DER): the primary key settles two organisations
-- registering the same certificate at once, which a check-then-insert could
-- not. Registrations of existing certificates are carried over; should two
-- organisations already share one, the first registered keeps it.
CREATE TABLE client_certificate_owners (
    certificate_sha256 TEXT PRIMARY KEY,
    entity_id          TEXT NOT NULL REFERENCES entities (id)
);
INSERT INTO client_certificate_owners (certificate_sha256, entity_id)
SELECT a.certificate_sha256, a.entity_id FROM activation_credentials a
WHERE a.kind = 'client_certificate'
  AND NOT EXISTS (
    SELECT 1 FROM activation_credentials b
    WHERE b.kind = 'client_certificate' AND b.certificate_sha256 = a.certificate_sha256
      AND (b.created_at < a.created_at OR (b.created_at = a.created_at AND b.id < a.id))
  );
