-- The ts of a request's card in the support channel, recorded once Slack has
-- it: later edits of the card (and replies under it) name the message itself
-- instead of the outbox row that posted it, which housekeeping deletes after
-- the retention period.
ALTER TABLE requests ADD COLUMN card_ts TEXT;
