-- The highest counter of each monotonic bundle (the `risk` bundle) a service has activated,
-- per service: a restarted instance refuses a validly signed revision older than the one
-- the service enforced before, instead of accepting whatever it is offered first.
CREATE TABLE gate_revision_floors (
    service    TEXT    NOT NULL,
    bundle     TEXT    NOT NULL,
    counter    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (service, bundle)
);
