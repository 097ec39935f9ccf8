-- The requests listing pages newest first, by organisation or for all:
-- keyset paging on (created_at, id) reads these indexes in order.
CREATE INDEX registration_requests_listing ON registration_requests (entity_id, created_at, id);
CREATE INDEX registration_requests_newest ON registration_requests (created_at, id);
