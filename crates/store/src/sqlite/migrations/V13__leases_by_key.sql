-- A node renews its leases by key (the deliveries it works on), not by owner, so no
-- statement on the hot path looks deliveries up by their lease owner: one index fewer to
-- write for every delivery created leased, and none to update when its lease ends. Giving
-- back every lease at start reads the pending deliveries through their own indexes.
DROP INDEX deliveries_owner;
