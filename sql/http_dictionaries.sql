-- Reference dictionaries served by `b24ch serve` (GET/POST /v1/dictionaries/{name}) through
-- ClickHouse's HTTP dictionary source. Works on any ClickHouse that can reach serve; DDL is fine
-- here. Replace the URL and the token (proxy.public_url and proxy.token of the config), or
-- keep both in a named collection.
--
-- UPDATE_FIELD makes reloads incremental: from the second load on, ClickHouse appends
-- `modified_since=<its last update time minus UPDATE_LAG seconds>` to the URL, written in the
-- ClickHouse server's time zone (add `&update_tz=+03:00` to the URL if that is not UTC), and
-- b24ch lists only rows modified since then (minus a 120 s lookback); ClickHouse merges them in.
-- Entities without a modification cursor (users, departments, statuses) are sent whole.
--
-- Only the scheduled (LIFETIME) reloads of clickhouse-server are incremental. SYSTEM RELOAD
-- DICTIONARY is a forced reload and starts afresh (ExternalLoader drops the previous version),
-- so it always loads every row. clickhouse-local (and the chdb-based local server) runs no
-- scheduled reloads at all: ExternalDictionariesLoader enables its periodic updater only for
-- ApplicationType::SERVER, so there UPDATE_FIELD never takes effect and only manual, full
-- reloads happen.

-- Deal titles and stages by ID, refreshed incrementally every 1-2 minutes.
CREATE DICTIONARY IF NOT EXISTS b24.b24_deals
(
    ID UInt64,
    TITLE String,
    STAGE_ID String,
    ASSIGNED_BY_ID UInt64
)
PRIMARY KEY ID
SOURCE(HTTP(
    URL 'http://127.0.0.1:8480/v1/dictionaries/crm_deal?format=JSONEachRow'
    FORMAT 'JSONEachRow'
    HEADERS(header(name 'Authorization' value 'Bearer CHANGE_ME_PROXY_TOKEN'))
    UPDATE_FIELD 'modified_since'
    UPDATE_LAG 1
))
LAYOUT(HASHED())
LIFETIME(MIN 60 MAX 120);

-- Users as a cache: ClickHouse POSTs the IDs it misses, b24ch lists only those.
CREATE DICTIONARY IF NOT EXISTS b24.b24_users_http
(
    ID UInt64,
    NAME String,
    LAST_NAME String
)
PRIMARY KEY ID
SOURCE(HTTP(
    URL 'http://127.0.0.1:8480/v1/dictionaries/user?format=JSONEachRow'
    FORMAT 'JSONEachRow'
    HEADERS(header(name 'Authorization' value 'Bearer CHANGE_ME_PROXY_TOKEN'))
))
LAYOUT(CACHE(SIZE_IN_CELLS 10000))
LIFETIME(MIN 300 MAX 600);

-- Stages loaded whole, TabSeparated with an explicit column list (the dictionary's order).
CREATE DICTIONARY IF NOT EXISTS b24.b24_stages_http
(
    ENTITY_ID String,
    STATUS_ID String,
    NAME String
)
PRIMARY KEY ENTITY_ID, STATUS_ID
SOURCE(HTTP(
    URL 'http://127.0.0.1:8480/v1/dictionaries/crm_status?format=TabSeparated&columns=ENTITY_ID,STATUS_ID,NAME'
    FORMAT 'TabSeparated'
    HEADERS(header(name 'Authorization' value 'Bearer CHANGE_ME_PROXY_TOKEN'))
))
LAYOUT(COMPLEX_KEY_HASHED())
LIFETIME(MIN 300 MAX 600);
