-- Which owner keys exist (migration 019), so that finding a dead owner's rows does not walk the
-- owned rows. Every second each dispatcher swept `status = 'pending' AND owner_key IS NOT NULL`
-- for keys missing from pg_locks, and gave back its own rows older than three leases: both
-- walked the owned index, whose entries of rows finished since the last VACUUM are dead but
-- still visited (one heap visit each). At 20,000 webhooks/s that was 135 ms of PostgreSQL's
-- CPU every second (bench/RESULTS.md, set 13).
-- Now a dispatcher registers its key here when it takes the lock and refreshes `seen_at` every
-- second; the sweep reads this small table and frees rows only for a key whose lock is gone and
-- which nobody has refreshed for the grace period.
CREATE TABLE wa_inbox_owners (
  owner_key bigint PRIMARY KEY,
  seen_at timestamptz NOT NULL DEFAULT now()
);

-- Upgrade: stop processes of older versions before this runs. Their keys are registered below
-- only if they own rows now, and they do not refresh them; a row such a process commits later
-- is freed only by the start-up walk of a later process (inbox_claims::free_all_orphans).
-- Keys of processes that ran before this migration: eligible at once once their lock is gone.
INSERT INTO wa_inbox_owners (owner_key, seen_at)
SELECT DISTINCT owner_key, '-infinity'::timestamptz FROM wa_webhook_events
 WHERE status = 'pending' AND owner_key IS NOT NULL;
