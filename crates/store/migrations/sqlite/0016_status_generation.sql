-- The status generation (sqlite): one counter that every change to what an
-- OCSP answer says moves, in the same transaction as the change. An instance
-- that has read generation G, and finds it unchanged, knows the statuses it
-- read at G still hold, without reading them again (store::status).
--
-- Triggers, not application code, move it: no write path can forget to.
-- Statuses come from certificates (state, policy), revocations, CA and service
-- certificates and their revocations, final OCSP responses and terminations.

CREATE TABLE status_generation (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    value  INTEGER NOT NULL
);
INSERT INTO status_generation (id, value) VALUES (1, 0);

CREATE TRIGGER certificates_issued_status AFTER INSERT ON certificates
WHEN NEW.state = 'issued'
BEGIN UPDATE status_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER certificates_changed_status AFTER UPDATE OF serial, state, policy_id ON certificates
BEGIN UPDATE status_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER certificates_deleted_status AFTER DELETE ON certificates
WHEN OLD.state = 'issued'
BEGIN UPDATE status_generation SET value = value + 1 WHERE id = 1; END;

CREATE TRIGGER revocations_inserted_status AFTER INSERT ON revocations
BEGIN UPDATE status_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER revocations_changed_status AFTER UPDATE ON revocations
BEGIN UPDATE status_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER revocations_deleted_status AFTER DELETE ON revocations
BEGIN UPDATE status_generation SET value = value + 1 WHERE id = 1; END;

CREATE TRIGGER ca_certificates_inserted_status AFTER INSERT ON ca_certificates
BEGIN UPDATE status_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER ca_certificates_changed_status AFTER UPDATE OF serial, purpose ON ca_certificates
BEGIN UPDATE status_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER ca_certificates_deleted_status AFTER DELETE ON ca_certificates
BEGIN UPDATE status_generation SET value = value + 1 WHERE id = 1; END;

CREATE TRIGGER ca_revocations_inserted_status AFTER INSERT ON ca_revocations
BEGIN UPDATE status_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER ca_revocations_changed_status AFTER UPDATE ON ca_revocations
BEGIN UPDATE status_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER ca_revocations_deleted_status AFTER DELETE ON ca_revocations
BEGIN UPDATE status_generation SET value = value + 1 WHERE id = 1; END;

CREATE TRIGGER final_ocsp_responses_inserted_status AFTER INSERT ON final_ocsp_responses
BEGIN UPDATE status_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER final_ocsp_responses_changed_status AFTER UPDATE ON final_ocsp_responses
BEGIN UPDATE status_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER final_ocsp_responses_deleted_status AFTER DELETE ON final_ocsp_responses
BEGIN UPDATE status_generation SET value = value + 1 WHERE id = 1; END;

CREATE TRIGGER ca_terminations_inserted_status AFTER INSERT ON ca_terminations
BEGIN UPDATE status_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER ca_terminations_deleted_status AFTER DELETE ON ca_terminations
BEGIN UPDATE status_generation SET value = value + 1 WHERE id = 1; END;
