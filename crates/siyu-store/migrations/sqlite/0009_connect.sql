-- Connect: a tenant's WeCom corp, the callback inbox, channel live codes, contacts held by
-- guides, welcome messages, customer groups and their members over time, group SOP posts and
-- mass messages with their tasks per guide.

INSERT INTO id_counters (name, next_id) VALUES
    ('live_code', 1), ('group_member', 1), ('sop_post', 1), ('sop_task', 1), ('mass_message', 1), ('mass_task', 1);

-- Secrets are encrypted with the field key.
CREATE TABLE wecom_corps (
    tenant_id    INTEGER PRIMARY KEY,
    corp_id      TEXT NOT NULL,
    secret_enc   TEXT NOT NULL,
    token_enc    TEXT NOT NULL,
    aes_key_enc  TEXT NOT NULL,
    base_url     TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- Every callback, written before it is acknowledged; `event_key` (a hash of the decrypted
-- message) makes WeCom's retries no-ops.
CREATE TABLE wecom_inbox (
    tenant_id    INTEGER NOT NULL,
    event_key    TEXT NOT NULL,
    event        TEXT NOT NULL,
    body         TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    done_at      INTEGER,
    error        TEXT,
    PRIMARY KEY (tenant_id, event_key)
);
CREATE INDEX wecom_inbox_pending ON wecom_inbox (done_at, received_at);

CREATE TABLE live_codes (
    id            INTEGER PRIMARY KEY,
    tenant_id     INTEGER NOT NULL,
    name          TEXT NOT NULL,
    source        TEXT NOT NULL,
    source_id     INTEGER,
    state         TEXT NOT NULL,
    config_id     TEXT NOT NULL,
    qr_code       TEXT NOT NULL,
    tag_ids       TEXT NOT NULL,
    welcome       TEXT NOT NULL,
    guides        TEXT NOT NULL,
    backup_userid TEXT NOT NULL,
    serving       TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (tenant_id, state)
);

-- Adds per code, guide and local day: the daily caps.
CREATE TABLE live_code_daily (
    tenant_id INTEGER NOT NULL,
    code_id   INTEGER NOT NULL,
    day       INTEGER NOT NULL,
    userid    TEXT NOT NULL,
    adds      INTEGER NOT NULL,
    PRIMARY KEY (code_id, day, userid)
);

-- A Siyu tag and the WeCom corp tag that mirrors it.
CREATE TABLE wecom_tags (
    tenant_id    INTEGER NOT NULL,
    tag_id       INTEGER NOT NULL,
    wecom_tag_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, tag_id)
);

-- A customer held by a guide: one row per (external contact, guide).
CREATE TABLE wecom_contacts (
    tenant_id       INTEGER NOT NULL,
    external_userid TEXT NOT NULL,
    userid          TEXT NOT NULL,
    customer_id     INTEGER,
    code_id         INTEGER,
    state           TEXT,
    added_at        INTEGER NOT NULL,
    deleted_at      INTEGER,
    deleted_by      TEXT,
    PRIMARY KEY (tenant_id, external_userid, userid)
);
CREATE INDEX wecom_contacts_code ON wecom_contacts (tenant_id, code_id);
CREATE INDEX wecom_contacts_customer ON wecom_contacts (tenant_id, customer_id);

CREATE TABLE welcome_messages (
    tenant_id       INTEGER NOT NULL,
    welcome_code    TEXT NOT NULL,
    code_id         INTEGER,
    external_userid TEXT NOT NULL,
    userid          TEXT NOT NULL,
    received_at     INTEGER NOT NULL,
    sent_at         INTEGER,
    result          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, welcome_code)
);

CREATE TABLE wecom_groups (
    tenant_id    INTEGER NOT NULL,
    chat_id      TEXT NOT NULL,
    name         TEXT NOT NULL,
    owner        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    dismissed_at INTEGER,
    synced_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, chat_id)
);

-- One row per stint in a group: joined, and left (NULL while still in it).
CREATE TABLE wecom_group_members (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL,
    chat_id     TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    member_type INTEGER NOT NULL,
    join_scene  INTEGER,
    joined_at   INTEGER NOT NULL,
    left_at     INTEGER,
    quit_scene  INTEGER
);
CREATE INDEX wecom_group_members_chat ON wecom_group_members (tenant_id, chat_id, member_id);

CREATE TABLE sop_posts (
    id              INTEGER PRIMARY KEY,
    tenant_id       INTEGER NOT NULL,
    name            TEXT NOT NULL,
    group_kind      TEXT,
    chat_id         TEXT,
    due_at          INTEGER NOT NULL,
    content         TEXT NOT NULL,
    remind_after_ms INTEGER NOT NULL,
    repeat_days     INTEGER,
    created_at      INTEGER NOT NULL,
    released_at     INTEGER
);
CREATE INDEX sop_posts_due ON sop_posts (released_at, due_at);

-- The post handed to one group owner: a WeCom mass-message task for their groups.
CREATE TABLE sop_tasks (
    id           INTEGER PRIMARY KEY,
    tenant_id    INTEGER NOT NULL,
    post_id      INTEGER NOT NULL,
    owner        TEXT NOT NULL,
    chat_ids     TEXT NOT NULL,
    msgid        TEXT,
    status       TEXT NOT NULL,
    error        TEXT,
    created_at   INTEGER NOT NULL,
    reminded_at  INTEGER,
    completed_at INTEGER,
    UNIQUE (post_id, owner)
);

CREATE TABLE mass_messages (
    id              INTEGER PRIMARY KEY,
    tenant_id       INTEGER NOT NULL,
    name            TEXT NOT NULL,
    audience        TEXT NOT NULL,
    content         TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    remind_after_ms INTEGER NOT NULL,
    status          TEXT NOT NULL,
    not_before      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    released_at     INTEGER
);

CREATE TABLE mass_tasks (
    id           INTEGER PRIMARY KEY,
    tenant_id    INTEGER NOT NULL,
    mass_id      INTEGER NOT NULL,
    sender       TEXT NOT NULL,
    -- A guide's recipients beyond WeCom's 10,000 per task go into further parts.
    part         INTEGER NOT NULL DEFAULT 0,
    msgid        TEXT,
    recipients   INTEGER NOT NULL,
    sent         INTEGER NOT NULL DEFAULT 0,
    status       TEXT NOT NULL,
    error        TEXT,
    created_at   INTEGER NOT NULL,
    reminded_at  INTEGER,
    completed_at INTEGER,
    UNIQUE (mass_id, sender, part)
);

-- Who a mass message goes to, through which guide, and what happened; `day` (local day
-- number) enforces WeCom's one mass message per customer per day.
CREATE TABLE mass_recipients (
    tenant_id       INTEGER NOT NULL,
    mass_id         INTEGER NOT NULL,
    customer_id     INTEGER NOT NULL,
    external_userid TEXT NOT NULL,
    sender          TEXT NOT NULL,
    task_id         INTEGER,
    status          TEXT NOT NULL,
    day             INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (mass_id, external_userid)
);
CREATE INDEX mass_recipients_customer ON mass_recipients (tenant_id, customer_id, created_at);
