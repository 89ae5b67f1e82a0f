-- The W3C trace context (`traceparent`) of the request that queued each job, so the
-- worker's span continues that request's trace. Trace ids only: no request content.
ALTER TABLE jobs ADD COLUMN trace_parent VARCHAR(64) NULL;
