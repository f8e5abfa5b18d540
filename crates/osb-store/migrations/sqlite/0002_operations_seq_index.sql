-- The next operation number is MAX(seq) + 1: an index keeps that a lookup, however many
-- operations the table holds.
CREATE INDEX operations_seq ON operations (seq);
