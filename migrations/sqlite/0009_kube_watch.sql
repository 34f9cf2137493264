-- Kubernetes watchers. One replica at a time watches a cluster: it holds the
-- cluster's lease row and renews it; another replica takes the row over once
-- it has expired. Rollouts are recorded once: the last revision recorded per
-- watched object (its source, e.g. kube:acme-prod:deployment/shop/checkout)
-- is compared-and-set in the transaction that records the change.
CREATE TABLE cluster_leases (
    cluster    TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE rollout_revisions (
    source   TEXT PRIMARY KEY,
    revision TEXT NOT NULL,
    seen_at  BIGINT NOT NULL
);
