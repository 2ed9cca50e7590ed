-- Old attempts are purged by id (an id carries the time it was made, so the oldest are the
-- lowest), so their creation time needs no index of its own: one index fewer to write for
-- every attempt.
DROP INDEX attempts_created;
