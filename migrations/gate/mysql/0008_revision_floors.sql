-- The highest counter of each monotonic bundle (the `risk` bundle) a service has activated,
-- per service: a restarted instance refuses a validly signed revision older than the one
-- the service enforced before, instead of accepting whatever it is offered first.
CREATE TABLE gate_revision_floors (
    service    VARCHAR(32) NOT NULL,
    bundle     VARCHAR(63) NOT NULL,
    counter    BIGINT      NOT NULL,
    updated_at BIGINT      NOT NULL,
    PRIMARY KEY (service, bundle)
) ENGINE = InnoDB;
