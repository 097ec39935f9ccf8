-- The status generation (postgres): one counter that every change to what an
-- OCSP answer says moves, in the same transaction as the change. An instance
-- that has read generation G, and finds it unchanged, knows the statuses it
-- read at G still hold, without reading them again (store::status).
--
-- Triggers, not application code, move it: no write path can forget to.
-- Statuses come from certificates (state, policy), revocations, CA and service
-- certificates and their revocations, final OCSP responses and terminations.
-- The triggers are deferred to the commit: the counter's row is locked for
-- the commit only, not for the whole of a transaction that changes a status.

CREATE TABLE status_generation (
    id     SMALLINT PRIMARY KEY CHECK (id = 1),
    value  BIGINT   NOT NULL
);
INSERT INTO status_generation (id, value) VALUES (1, 0);

CREATE FUNCTION bump_status_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE status_generation SET value = value + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER certificates_inserted_status AFTER INSERT ON certificates
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.state = 'issued')
    EXECUTE FUNCTION bump_status_generation();
CREATE CONSTRAINT TRIGGER certificates_changed_status AFTER UPDATE OF serial, state, policy_id ON certificates
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION bump_status_generation();
CREATE CONSTRAINT TRIGGER certificates_deleted_status AFTER DELETE ON certificates
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.state = 'issued')
    EXECUTE FUNCTION bump_status_generation();
CREATE CONSTRAINT TRIGGER revocations_inserted_status AFTER INSERT ON revocations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION bump_status_generation();
CREATE CONSTRAINT TRIGGER revocations_changed_status AFTER UPDATE ON revocations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION bump_status_generation();
CREATE CONSTRAINT TRIGGER revocations_deleted_status AFTER DELETE ON revocations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION bump_status_generation();
CREATE CONSTRAINT TRIGGER ca_certificates_inserted_status AFTER INSERT ON ca_certificates
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION bump_status_generation();
CREATE CONSTRAINT TRIGGER ca_certificates_changed_status AFTER UPDATE OF serial, purpose ON ca_certificates
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION bump_status_generation();
CREATE CONSTRAINT TRIGGER ca_certificates_deleted_status AFTER DELETE ON ca_certificates
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION bump_status_generation();
CREATE CONSTRAINT TRIGGER ca_revocations_inserted_status AFTER INSERT ON ca_revocations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION bump_status_generation();
CREATE CONSTRAINT TRIGGER ca_revocations_changed_status AFTER UPDATE ON ca_revocations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION bump_status_generation();
CREATE CONSTRAINT TRIGGER ca_revocations_deleted_status AFTER DELETE ON ca_revocations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION bump_status_generation();
CREATE CONSTRAINT TRIGGER final_ocsp_responses_inserted_status AFTER INSERT ON final_ocsp_responses
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION bump_status_generation();
CREATE CONSTRAINT TRIGGER final_ocsp_responses_changed_status AFTER UPDATE ON final_ocsp_responses
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION bump_status_generation();
CREATE CONSTRAINT TRIGGER final_ocsp_responses_deleted_status AFTER DELETE ON final_ocsp_responses
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION bump_status_generation();
CREATE CONSTRAINT TRIGGER ca_terminations_inserted_status AFTER INSERT ON ca_terminations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION bump_status_generation();
CREATE CONSTRAINT TRIGGER ca_terminations_deleted_status AFTER DELETE ON ca_terminations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION bump_status_generation();
