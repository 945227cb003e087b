-- Greetings written by the `greet` job (see src/greeter.rs).
CREATE TABLE greetings (
    id         BIGSERIAL PRIMARY KEY,
    job_id     BIGINT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    greeting   TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
