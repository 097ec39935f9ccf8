-- The one register of the serial numbers sceau's CAs have used: each is
-- reserved here, under its certificate's kind, before anything is signed
-- with it, and stays taken whether or not the signature followed. One
-- register for every kind and every CA, so that no two certificates sceau
-- signs share a serial, whichever table keeps them.
CREATE TABLE serial_reservations (
    serial      TEXT    NOT NULL PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('seal', 'client_auth', 'ocsp_responder',
                        'time_stamping_unit', 'root', 'issuing_ca', 'client_auth_ca')),
    reserved_at BIGINT NOT NULL
);

INSERT INTO serial_reservations (serial, kind, reserved_at)
SELECT serial,
       CASE purpose WHEN 'root' THEN 'root'
                    WHEN 'issuing' THEN 'issuing_ca'
                    WHEN 'client-auth' THEN 'client_auth_ca'
                    WHEN 'ocsp' THEN 'ocsp_responder'
                    ELSE 'time_stamping_unit' END,
       created_at
FROM ca_certificates;

INSERT INTO serial_reservations (serial, kind, reserved_at)
SELECT serial, CASE policy_id WHEN 'client-auth' THEN 'client_auth' ELSE 'seal' END, reserved_at
FROM certificates
WHERE serial NOT IN (SELECT serial FROM serial_reservations);
