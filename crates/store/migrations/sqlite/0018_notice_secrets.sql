-- A secret a notice carries (an enrolment link's token), encrypted under the
-- services token's key-encryption key and put in the body only when the notice
-- is sent; erased once it is. The body keeps a placeholder in its place.
ALTER TABLE notices ADD COLUMN sealed_secret BLOB;
