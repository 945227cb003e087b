-- Orders, their items, and the notifications their confirmation writes.
-- Applied in order under an advisory lock by the database component, so
-- replicas starting together migrate once.

CREATE TABLE orders (
    id                 BIGSERIAL PRIMARY KEY,
    customer           TEXT NOT NULL,
    status             TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed')),
    total_cents        BIGINT NOT NULL CHECK (total_cents >= 0),
    -- A client's retry with the same key returns this order instead of a new one.
    idempotency_key    TEXT UNIQUE,
    -- What the first request asked for, so a reused key with another body is refused.
    request_body       TEXT,
    -- How many times the confirmation job committed: exactly once, or a bug.
    confirmation_runs  INT NOT NULL DEFAULT 0,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    confirmed_at       TIMESTAMPTZ
);

CREATE TABLE order_items (
    order_id          BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    position          INT NOT NULL,
    sku               TEXT NOT NULL,
    quantity          INT NOT NULL CHECK (quantity > 0),
    unit_price_cents  BIGINT NOT NULL CHECK (unit_price_cents >= 0),
    PRIMARY KEY (order_id, position)
);

CREATE TABLE notifications (
    id          BIGSERIAL PRIMARY KEY,
    order_id    BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    message     TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (order_id, kind)
);
